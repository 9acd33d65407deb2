package torch

// Declarations of LibTorch C wrappers compiled into gotch's libtch package; the
// linker resolves them from there. gotch's own Go wrapper of at_grad_set_enabled
// reads an 8-byte int from a 4-byte C int, so its result is garbage.

/*
#include <malloc.h>
extern int at_grad_set_enabled(int);
static void loraqa_malloc_trim(void) {
#ifdef __GLIBC__
	malloc_trim(0);
#endif
}
*/
import "C"

import (
	"runtime/debug"

	lib "github.com/sugarme/gotch/libtch"
)

// gradSetEnabled sets the grad mode of the calling OS thread and returns the previous one.
func gradSetEnabled(on bool) bool {
	lib.LoraqaCountCall()
	b := C.int(0)
	if on {
		b = 1
	}
	return C.at_grad_set_enabled(b) == 1
}

// ReleaseMemory hands memory that is free but still held back to the OS: the Go
// heap's (debug.FreeOSMemory) and glibc malloc's (malloc_trim), where freed
// LibTorch tensors below the mmap threshold stay otherwise. It costs a GC
// cycle; call it after freeing a lot at once (an adapter unloaded, an idle
// server's activations), not per request.
func ReleaseMemory() {
	debug.FreeOSMemory()
	C.loraqa_malloc_trim()
}
