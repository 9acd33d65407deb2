package torch

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// rssKiB is this process's resident set (VmRSS) in KiB.
func rssKiB(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			n, err := strconv.ParseInt(f[1], 10, 64)
			require.NoError(t, err)
			return n
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}

// TestReleaseMemoryReturnsFreedHeap: 64 MiB of small tensors, all freed but
// the last (it pins the top of malloc's heap, so free cannot shrink it
// alone), stay resident until ReleaseMemory hands them back.
func TestReleaseMemoryReturnsFreedHeap(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("glibc's malloc_trim and /proc only")
	}
	runtime.LockOSThread() // one malloc arena for the allocations
	defer runtime.UnlockOSThread()
	const n, elems = 16384, 1024 // 4 KiB each: below any mmap threshold
	ReleaseMemory()
	before := rssKiB(t)
	xs := make([]*ts.Tensor, n)
	for i := range xs {
		xs[i] = ts.MustOnes([]int64{elems}, gotch.Float, gotch.CPU) // written: resident
	}
	for _, x := range xs[:n-1] {
		x.MustDrop()
	}
	held := rssKiB(t)
	ReleaseMemory()
	after := rssKiB(t)
	xs[n-1].MustDrop()
	t.Logf("RSS %d KiB before, %d with the freed tensors, %d after ReleaseMemory", before, held, after)
	assert.Greater(t, held-before, int64(48<<10), "the freed tensors stay resident before the release")
	assert.Greater(t, held-after, int64(40<<10), "ReleaseMemory hands them back")
}
