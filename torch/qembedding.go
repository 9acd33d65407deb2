package torch

/*
#include <stdlib.h>
extern char* loraqa_qembedding_quantize(void* table, void** out);
extern char* loraqa_qembedding_pack(void* qtable, void** out);
extern char* loraqa_qembedding_forward(void* h, void* ids, void** out);
*/
import "C"

import (
	"runtime"
	"unsafe"

	"github.com/sugarme/gotch/ts"
)

// QEmbedding is an embedding table stored in 8 bits, as torch.ao's
// nn.quantized.Embedding (quantize_dynamic with
// float_qparams_weight_only_qconfig) stores it: each row quantized to quint8
// with its own float scale and zero point, packed for fbgemm; a lookup
// returns float32 rows (quantized::embedding_byte). A quarter of the float32
// table's memory. It lives in C memory: Drop frees it, and LiveTensors counts
// it until then. CPU only.
type QEmbedding struct {
	int8Params
	Rows, Dim int64
}

// NewQEmbedding quantizes table (float32 [rows, dim], on the CPU) and packs
// it. With consume it drops the table as soon as the quantized copy exists,
// before packing, which lowers the peak memory by the table's size (also on
// an error); without, the caller keeps the table and may free it afterwards.
func NewQEmbedding(table *ts.Tensor, consume bool) (*QEmbedding, error) {
	if err := Int8Available(); err != nil {
		if consume {
			table.MustDrop()
		}
		return nil, err
	}
	size := table.MustSize()
	var qt, h unsafe.Pointer
	err := Catch(func() { shimErr(C.loraqa_qembedding_quantize(table.Ctensor(), &qt)) })
	runtime.KeepAlive(table)
	if consume {
		table.MustDrop()
	}
	if err != nil {
		return nil, err
	}
	q := ts.FromCtensor(qt)
	err = Catch(func() { shimErr(C.loraqa_qembedding_pack(q.Ctensor(), &h)) })
	q.MustDrop()
	if err != nil {
		return nil, err
	}
	return &QEmbedding{int8Params: int8Params{h}, Rows: size[0], Dim: size[1]}, nil
}

// Forward looks up ids (int64, any shape) and returns float32 [ids..., Dim],
// the caller's. Like gotch's operations it panics with a LibTorch failure
// (Catch returns it as an *Error), and after Drop.
func (q *QEmbedding) Forward(ids *ts.Tensor) *ts.Tensor {
	return q.forward("int8 embedding", ids, func(h, ids unsafe.Pointer, out *unsafe.Pointer) *C.char {
		return C.loraqa_qembedding_forward(h, ids, out)
	})
}
