//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package sweep

// lockDir is a no-op where flock(2) is not available.
func lockDir(dir string) (unlock func(), err error) { return func() {}, nil }
