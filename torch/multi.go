package torch

/*
#include <stdint.h>
#include <stdlib.h>
extern char* loraqa_zero_grad(void** params, int n);
extern char* loraqa_clip_grad_norm(void** params, int n, double max_norm, void** extra, int nextra, void** total_out, void** found_out);
extern char* loraqa_adamw_foreach(void** params, void** ms, void** vs, int n, const int* decay, double lr, double beta1,
	double beta2, double eps, double wd, double bc1, double bc2, int hf, void* found_inf, int* skipped, int* synced);
extern char* loraqa_adamw_fused(void** params, void** ms, void** vs, void** steps, int n, const int* decay, double lr,
	double beta1, double beta2, double eps, double wd, void* grad_scale, void* found_inf);
extern char* loraqa_unscale(void** params, int n, void* found_inf, void* inv_scale);
extern char* loraqa_update_scale(void* scale, void* tracker, void* found_inf, double growth, double backoff, int64_t interval);
extern char* loraqa_cuda_settings(int tf32, int deterministic);
extern char* loraqa_pinned_empty(int64_t n, void** out);
extern char* loraqa_copy_async(void* dst, void* src);
extern int64_t loraqa_cuda_mem_used();
extern int loraqa_empty_cuda_cache();
extern char* loraqa_full0(double v, int dtype, int device, void** out);
*/
import "C"

import (
	"errors"
	"runtime"
	"unsafe"

	"github.com/sugarme/gotch"
	lib "github.com/sugarme/gotch/libtch"
	// The shim's C++ (torch/csrc), compiled by tools/setup into the gotch copy.
	_ "github.com/sugarme/gotch/lqshim"
	"github.com/sugarme/gotch/ts"
)

// The multi-tensor operations of a training step, each one call into
// LibTorch (torch/csrc/loraqa_shim.cpp) whatever the number of tensors.

// shimErr turns the shim's error message (malloc'd, NULL on success) into the
// panic gotch's own wrappers raise, which Catch returns as an *Error.
func shimErr(msg *C.char) {
	lib.LoraqaCountCall()
	if msg == nil {
		return
	}
	s := C.GoString(msg)
	C.free(unsafe.Pointer(msg))
	panic(&ts.LoraqaError{Err: errors.New(s)})
}

// handles is the C array of the tensors' handles; it lives in C memory, so
// that C code may keep reading it, and free releases it.
type handles struct {
	p unsafe.Pointer
	n int
}

func newHandles(tensors []*ts.Tensor) handles {
	if len(tensors) == 0 {
		return handles{}
	}
	p := C.malloc(C.size_t(len(tensors)) * C.size_t(unsafe.Sizeof(uintptr(0))))
	arr := unsafe.Slice((*unsafe.Pointer)(p), len(tensors))
	for i, t := range tensors {
		arr[i] = t.Ctensor()
	}
	return handles{p: p, n: len(tensors)}
}

func (h handles) ptr() *unsafe.Pointer { return (*unsafe.Pointer)(h.p) }
func (h handles) free() {
	if h.p != nil {
		C.free(h.p)
	}
}

func ctensor(t *ts.Tensor) unsafe.Pointer {
	if t == nil {
		return nil
	}
	return t.Ctensor()
}

func keep(lists ...[]*ts.Tensor) {
	for _, l := range lists {
		runtime.KeepAlive(l)
	}
}

// ZeroGrads zeroes every defined gradient of params in place (one call).
func ZeroGrads(params []*ts.Tensor) {
	if len(params) == 0 {
		return
	}
	h := newHandles(params)
	defer h.free()
	shimErr(C.loraqa_zero_grad(h.ptr(), C.int(h.n)))
	keep(params)
}

// ClipGradNorm is torch.nn.utils.clip_grad_norm_ in one call and without a
// host read: it scales the gradients of params so that their total L2 norm
// is at most maxNorm (maxNorm <= 0 only measures) and returns the total norm
// before clipping, a float32 0-dim tensor on the device. With withFound it
// also returns a bool tensor: the norm, or any of extra (the step's losses),
// is not finite. The caller drops both.
func ClipGradNorm(params []*ts.Tensor, maxNorm float64, extra []*ts.Tensor, withFound bool) (total, found *ts.Tensor) {
	if len(params) == 0 {
		panic(&ts.LoraqaError{Err: errors.New("ClipGradNorm: no parameters")})
	}
	h, e := newHandles(params), newHandles(extra)
	defer h.free()
	defer e.free()
	var tot, fnd unsafe.Pointer
	var fp *unsafe.Pointer
	if withFound {
		fp = &fnd
	}
	shimErr(C.loraqa_clip_grad_norm(h.ptr(), C.int(h.n), C.double(maxNorm), e.ptr(), C.int(e.n), &tot, fp))
	keep(params, extra)
	total = ts.FromCtensor(tot)
	if fnd != nil {
		found = ts.FromCtensor(fnd)
	}
	return total, found
}

// AdamWStep holds one AdamW step's scalars: the learning rate, the
// hyperparameters, the bias corrections BC1 = 1−β1^t and BC2 = √(1−β2^t),
// HF for transformers 4.x's variant, and which parameters decay.
type AdamWStep struct {
	LR, Beta1, Beta2, Eps, WeightDecay float64
	BC1, BC2                           float64
	HF                                 bool
	Decay                              []bool
}

func decayFlags(d []bool, n int) (*C.int, func()) {
	p := (*C.int)(C.malloc(C.size_t(n) * C.size_t(unsafe.Sizeof(C.int(0)))))
	arr := unsafe.Slice(p, n)
	for i := range arr {
		arr[i] = 0
		if i < len(d) && d[i] {
			arr[i] = 1
		}
	}
	return p, func() { C.free(unsafe.Pointer(p)) }
}

// AdamWForeach runs one AdamW step over params (moments m, v) in
// multi-tensor ops, one call. A true foundInf (a bool tensor, or nil) skips
// it: skipped says so, and synced whether finding out waited for a device.
func AdamWForeach(params, m, v []*ts.Tensor, s AdamWStep, foundInf *ts.Tensor) (skipped bool) {
	if len(params) == 0 {
		return false
	}
	hp, hm, hv := newHandles(params), newHandles(m), newHandles(v)
	defer hp.free()
	defer hm.free()
	defer hv.free()
	dec, free := decayFlags(s.Decay, len(params))
	defer free()
	hf := 0
	if s.HF {
		hf = 1
	}
	var sk, sy C.int
	shimErr(C.loraqa_adamw_foreach(hp.ptr(), hm.ptr(), hv.ptr(), C.int(hp.n), dec, C.double(s.LR), C.double(s.Beta1),
		C.double(s.Beta2), C.double(s.Eps), C.double(s.WeightDecay), C.double(s.BC1), C.double(s.BC2), C.int(hf),
		ctensor(foundInf), &sk, &sy))
	keep(params, m, v)
	runtime.KeepAlive(foundInf)
	if sy != 0 {
		hostSyncs.Add(1)
	}
	return sk != 0
}

// AdamWFused runs torch.optim.AdamW(fused=True)'s step: one kernel, with
// the step counts in steps (float32 0-dim tensors) on the device; a true
// foundInf skips it on the device, gradScale (or nil) divides the gradients.
// LibTorch has the kernel for CUDA, and for the CPU from 2.4.
func AdamWFused(params, m, v, steps []*ts.Tensor, s AdamWStep, gradScale, foundInf *ts.Tensor) {
	if len(params) == 0 {
		return
	}
	hp, hm, hv, hs := newHandles(params), newHandles(m), newHandles(v), newHandles(steps)
	defer hp.free()
	defer hm.free()
	defer hv.free()
	defer hs.free()
	dec, free := decayFlags(s.Decay, len(params))
	defer free()
	shimErr(C.loraqa_adamw_fused(hp.ptr(), hm.ptr(), hv.ptr(), hs.ptr(), C.int(hp.n), dec, C.double(s.LR),
		C.double(s.Beta1), C.double(s.Beta2), C.double(s.Eps), C.double(s.WeightDecay), ctensor(gradScale), ctensor(foundInf)))
	keep(params, m, v, steps)
	runtime.KeepAlive(gradScale)
	runtime.KeepAlive(foundInf)
}

// Unscale is GradScaler.unscale_: the gradients of params multiplied by
// invScale (float32, 0-dim), and foundInf (float32, one value) set to 1 when
// any held an inf or a NaN.
func Unscale(params []*ts.Tensor, foundInf, invScale *ts.Tensor) {
	if len(params) == 0 {
		return
	}
	h := newHandles(params)
	defer h.free()
	shimErr(C.loraqa_unscale(h.ptr(), C.int(h.n), foundInf.Ctensor(), invScale.Ctensor()))
	keep(params)
	runtime.KeepAlive(foundInf)
	runtime.KeepAlive(invScale)
}

// UpdateScale is GradScaler.update on the device: scale (float32) and
// tracker (int32) updated from foundInf (float32) with the growth and
// backoff factors and the growth interval.
func UpdateScale(scale, tracker, foundInf *ts.Tensor, growth, backoff float64, interval int64) {
	shimErr(C.loraqa_update_scale(scale.Ctensor(), tracker.Ctensor(), foundInf.Ctensor(), C.double(growth), C.double(backoff), C.int64_t(interval)))
	runtime.KeepAlive(scale)
	runtime.KeepAlive(tracker)
	runtime.KeepAlive(foundInf)
}

// SetCUDAMath sets the process-wide CUDA math switches: TF32 matmuls, and
// deterministic algorithms (with cuBLAS's fixed workspace). Both are off by
// default, as in PyTorch; deterministic must be set before the first CUDA
// matmul of the process to reach cuBLAS.
func SetCUDAMath(tf32, deterministic bool) error {
	b := func(v bool) C.int {
		if v {
			return 1
		}
		return 0
	}
	return Catch(func() { shimErr(C.loraqa_cuda_settings(b(tf32), b(deterministic))) })
}

// PinnedInt64 makes an uninitialised int64 tensor of n values in
// page-locked host memory (CUDA builds; an error elsewhere).
func PinnedInt64(n int) *ts.Tensor {
	var out unsafe.Pointer
	shimErr(C.loraqa_pinned_empty(C.int64_t(n), &out))
	return ts.FromCtensor(out)
}

// CopyAsync copies src into dst; from pinned host memory to a CUDA device it
// does not wait for the device.
func CopyAsync(dst, src *ts.Tensor) {
	shimErr(C.loraqa_copy_async(dst.Ctensor(), src.Ctensor()))
	runtime.KeepAlive(dst)
	runtime.KeepAlive(src)
}

// CUDAMemUsed is the memory in use on the current CUDA device in bytes
// (LibTorch's cache included), or -1 where there is none.
func CUDAMemUsed() int64 {
	lib.LoraqaCountCall()
	return int64(C.loraqa_cuda_mem_used())
}

// Synchronize waits for every queued kernel of dev (a no-op on the CPU).
func Synchronize(dev gotch.Device) {
	if dev.IsCuda() {
		countSync()
		lib.AtcSynchronize(int64(dev.Value))
	}
}

// Full0 makes a 0-dim tensor holding v, of dtype, on dev.
func Full0(v float64, dtype gotch.DType, dev gotch.Device) *ts.Tensor {
	idx := -1
	if dev.IsCuda() {
		idx = dev.Value
	}
	var out unsafe.Pointer
	shimErr(C.loraqa_full0(C.double(v), C.int(dtype.CKind()), C.int(idx), &out))
	return ts.FromCtensor(out)
}

func init() {
	if CUDABuild() {
		SetEmptyCUDACache(func() {
			lib.LoraqaCountCall()
			C.loraqa_empty_cuda_cache()
		})
	}
}
