package auth

// SetDummyHash replaces the unknown-user dummy hash (tests use a cheap one). Call it from TestMain
// only, before any test runs.
func SetDummyHash(h string) { dummyHash = h }

// LockoutSize returns the number of accounts the lockout tracks.
func (a *Authenticator) LockoutSize() int { return a.lock.size() }
