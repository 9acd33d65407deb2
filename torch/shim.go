package torch

// Declarations of LibTorch C wrappers compiled into gotch's libtch package; the
// linker resolves them from there. gotch's own Go wrapper of at_grad_set_enabled
// reads an 8-byte int from a 4-byte C int, so its result is garbage.

/*
extern int at_grad_set_enabled(int);
*/
import "C"

// gradSetEnabled sets the grad mode of the calling OS thread and returns the previous one.
func gradSetEnabled(on bool) bool {
	b := C.int(0)
	if on {
		b = 1
	}
	return C.at_grad_set_enabled(b) == 1
}
