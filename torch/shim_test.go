package torch

import (
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
)

// glibc takes the mmap threshold (mallopt returns 1).
func TestSetMmapThreshold(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("glibc only")
	}
	assert.True(t, SetMmapThreshold(1<<20))
	assert.True(t, SetMmapThreshold(128<<10)) // glibc's default
}
