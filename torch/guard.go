package torch

import (
	"runtime"
	"sync/atomic"

	"github.com/sugarme/gotch/ts"
)

// Guard runs fn, tensor work done on the calling goroutine, and returns a
// LibTorch failure inside it as an *Error, as Catch does; but first it frees
// at once every tensor fn created (on this goroutine) that is still live, and
// empties the CUDA caching allocator's cache (see SetEmptyCUDACache), so that
// an out-of-memory failure leaves the memory of the failed work to the next
// one instead of to Go's GC. Any other panic is passed on, after the same
// freeing. When fn returns, the tensors it created are its caller's, untouched.
//
// fn must not store a tensor it creates where it outlives a failure (a cache,
// a model field): Guard would free it under its owner.
func Guard(fn func()) (err error) {
	// A scope records by OS thread: the goroutine stays on this one.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	scope := ts.LoraqaOpenScope()
	ok := false
	defer func() {
		if ok {
			scope.Close(false)
			return
		}
		r := recover()
		scope.Close(true)
		EmptyCUDACache()
		if r == nil {
			return // runtime.Goexit
		}
		if e := AsError(r); e != nil {
			err = e
			return
		}
		panic(r)
	}()
	fn()
	ok = true
	return nil
}

var emptyCUDACache atomic.Pointer[func()]

// SetEmptyCUDACache installs the function that empties the CUDA caching
// allocator's cache and returns the one it replaces (nil: none). A CUDA
// build installs the shim's (torch.cuda.empty_cache, where LibTorch ≥ 2.9
// offers it without CUDA's headers); tests install their own. Guard calls it after freeing the tensors
// of failed work; without one, the freed blocks stay cached by LibTorch,
// where the next allocations reuse them.
func SetEmptyCUDACache(fn func()) (previous func()) {
	var p *func()
	if fn != nil {
		p = &fn
	}
	if old := emptyCUDACache.Swap(p); old != nil {
		return *old
	}
	return nil
}

// EmptyCUDACache empties the CUDA caching allocator's cache through the
// function SetEmptyCUDACache installed; it does nothing without one.
func EmptyCUDACache() {
	if f := emptyCUDACache.Load(); f != nil {
		(*f)()
	}
}
