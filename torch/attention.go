package torch

/*
extern char* loraqa_sdpa_unmasked(void* q, void* k, void* v, void** out);
*/
import "C"

import (
	"runtime"
	"unsafe"

	"github.com/sugarme/gotch/ts"
)

// AttentionUnmasked is scaled_dot_product_attention(q, k, v) with no mask and
// no dropout, for a batch without padding: q, k, v [B, H, L, dh]; the result
// is the caller's. transformers drops an all-ones mask the same way, which
// lets LibTorch run its flash kernel on the CPU (LibTorch before 2.3 has
// none that takes a mask). It needs LibTorch 2.0 or later and panics with a
// LibTorch failure, like gotch's operations.
func AttentionUnmasked(q, k, v *ts.Tensor) *ts.Tensor {
	var out unsafe.Pointer
	shimErr(C.loraqa_sdpa_unmasked(q.Ctensor(), k.Ctensor(), v.Ctensor(), &out))
	runtime.KeepAlive(q)
	runtime.KeepAlive(k)
	runtime.KeepAlive(v)
	return ts.FromCtensor(out)
}
