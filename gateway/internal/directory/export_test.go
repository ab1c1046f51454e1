package directory

import "time"

// SetDebounce shortens the watcher's debounce in tests.
func SetDebounce(st *Store, d time.Duration) { st.debounce = d }
