//go:build !race

package speaker

// raceEnabled: the tests run under the race detector.
const raceEnabled = false
