//go:build race

package transport

// raceEnabled: the race detector instruments every function, so stacks are larger.
const raceEnabled = true
