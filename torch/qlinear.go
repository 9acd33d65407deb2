package torch

/*
#include <stdint.h>
#include <stdlib.h>
extern char* loraqa_qlinear_check();
extern char* loraqa_qlinear_prepack(void* weight, void* bias, int reduce_range, void** out, void** scales_out);
extern char* loraqa_qlinear_forward(void* h, void* x, void** out);
extern void loraqa_qlinear_free(void* h);
extern int64_t loraqa_qlinear_live();
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"unsafe"

	"github.com/sugarme/gotch/ts"
)

// QLinear is a linear layer whose weight is int8, as PyTorch's
// torch.ao.quantization.quantize_dynamic makes it with per_channel_dynamic_qconfig:
// quantized once per output row (symmetric, scale max|w_row|/127.5, zero point
// 0) and prepacked for LibTorch's fbgemm engine (quantized::linear_prepack);
// each Forward quantizes its float32 input per tensor to ActBits bits and
// returns float32 (quantized::linear_dynamic). torch.ao's dynamic Linear
// always uses 7 bits (reduce_range); 8 are safe where fbgemm sums the
// products in int32 (Int8ActivationBits). It lives in C memory: Drop frees
// it, and LiveTensors counts it until then. CPU only.
type QLinear struct {
	int8Params
	Out, In int64
	ActBits int
}

// int8Params is a packed int8 weight or embedding table in C memory, for
// fbgemm (a QLinear's, a QEmbedding's): loraqa_qlinear_free frees both kinds,
// and LiveTensors counts them until Drop.
type int8Params struct{ h unsafe.Pointer }

// forward runs fn, the shim's forward for these parameters, on x and returns
// its result, the caller's. It panics with fn's failure, and after Drop with
// an error that names what (the kind of layer).
func (p *int8Params) forward(what string, x *ts.Tensor, fn func(h, x unsafe.Pointer, out *unsafe.Pointer) *C.char) *ts.Tensor {
	if p.h == nil {
		panic(&ts.LoraqaError{Err: errors.New(what + " used after Drop")})
	}
	var out unsafe.Pointer
	shimErr(fn(p.h, x.Ctensor(), &out))
	runtime.KeepAlive(x)
	return ts.FromCtensor(out)
}

// Drop frees the packed parameters; a second Drop does nothing.
func (p *int8Params) Drop() {
	if p.h == nil {
		return
	}
	C.loraqa_qlinear_free(p.h)
	p.h = nil
}

// int8Check is Int8Available's result, found once.
var int8Check = sync.OnceValue(func() error {
	return Catch(func() { shimErr(C.loraqa_qlinear_check()) })
})

// Int8Available is nil when this LibTorch can run int8 linears (it has the
// fbgemm quantized engine: PyPI's x86-64 builds do, Debian's 1.13 does not),
// or an error that says why not. Its first call makes fbgemm the process's
// quantized engine.
func Int8Available() error { return int8Check() }

// NewQLinear quantizes weight (float32 [out, in], on the CPU) and prepacks it
// with bias (float32 [out], or nil); its forwards quantize their inputs to
// actBits, 7 or 8. weight and bias may be freed afterwards: the packed copy
// holds what Forward needs.
func NewQLinear(weight, bias *ts.Tensor, actBits int) (*QLinear, error) {
	q, scales, err := newQLinear(weight, bias, actBits, false)
	if scales != nil {
		scales.MustDrop()
	}
	return q, err
}

// newQLinear is NewQLinear that also returns the per-row scales (float64
// [out]) when withScales.
func newQLinear(weight, bias *ts.Tensor, actBits int, withScales bool) (*QLinear, *ts.Tensor, error) {
	if actBits != 7 && actBits != 8 {
		return nil, nil, fmt.Errorf("int8 linear: activations of %d bits; 7 or 8", actBits)
	}
	if err := Int8Available(); err != nil {
		return nil, nil, err
	}
	reduceRange := C.int(0)
	if actBits == 7 {
		reduceRange = 1
	}
	var h, sc unsafe.Pointer
	var scp *unsafe.Pointer
	if withScales {
		scp = &sc
	}
	err := Catch(func() {
		shimErr(C.loraqa_qlinear_prepack(weight.Ctensor(), ctensor(bias), reduceRange, &h, scp))
	})
	runtime.KeepAlive(weight)
	runtime.KeepAlive(bias)
	if err != nil {
		return nil, nil, err
	}
	size := weight.MustSize()
	q := &QLinear{int8Params: int8Params{h}, Out: size[0], In: size[1], ActBits: actBits}
	var scales *ts.Tensor
	if sc != nil {
		scales = ts.FromCtensor(sc)
	}
	return q, scales, nil
}

// Forward is x·Wᵀ + b through the int8 weight: x is float32 [.., In], the
// result float32 [.., Out], the caller's. Like gotch's operations it panics
// with a LibTorch failure (Catch returns it as an *Error), and after Drop.
func (q *QLinear) Forward(x *ts.Tensor) *ts.Tensor {
	return q.forward("int8 linear", x, func(h, x unsafe.Pointer, out *unsafe.Pointer) *C.char {
		return C.loraqa_qlinear_forward(h, x, out)
	})
}

// liveQLinears is the number of packed weights not yet dropped.
func liveQLinears() int { return int(C.loraqa_qlinear_live()) }
