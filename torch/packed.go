package torch

/*
#include <stdlib.h>
extern char* loraqa_packed_linear_check();
extern char* loraqa_packed_linear_prepack(void* weight, void** out);
extern char* loraqa_packed_linear_forward(void* x, void* packed, void* bias, void** out);
*/
import "C"

import (
	"runtime"
	"sync"
	"unsafe"

	"github.com/sugarme/gotch/ts"
)

// packedCheck is PackedLinearAvailable's result, found once.
var packedCheck = sync.OnceValue(func() error {
	return Catch(func() { shimErr(C.loraqa_packed_linear_check()) })
})

// PackedLinearAvailable is nil when this LibTorch can prepack linears for
// oneDNN (mkldnn::_reorder_linear_weight and _linear_pointwise: LibTorch
// 2.0 and later, with oneDNN on), or an error that says why not.
func PackedLinearAvailable() error { return packedCheck() }

// PackLinearWeight reorders weight (float32 or bfloat16 [out, in], on the
// CPU) into oneDNN's blocked layout once, as torch.compile does with a frozen
// linear; PackedLinear runs it. The result is the caller's (an opaque mkldnn
// tensor: Drop frees it).
func PackLinearWeight(weight *ts.Tensor) (*ts.Tensor, error) {
	if err := PackedLinearAvailable(); err != nil {
		return nil, err
	}
	var out unsafe.Pointer
	err := Catch(func() { shimErr(C.loraqa_packed_linear_prepack(weight.Ctensor(), &out)) })
	runtime.KeepAlive(weight)
	if err != nil {
		return nil, err
	}
	return ts.FromCtensor(out), nil
}

// PackedLinear is x·Wᵀ + b with W packed by PackLinearWeight: x [.., in] in
// the weight's dtype, bias [out] or nil; the result is the caller's. Like
// gotch's operations it panics with a LibTorch failure.
func PackedLinear(x, packed, bias *ts.Tensor) *ts.Tensor {
	var out unsafe.Pointer
	shimErr(C.loraqa_packed_linear_forward(x.Ctensor(), packed.Ctensor(), ctensor(bias), &out))
	runtime.KeepAlive(x)
	runtime.KeepAlive(packed)
	runtime.KeepAlive(bias)
	return ts.FromCtensor(out)
}
