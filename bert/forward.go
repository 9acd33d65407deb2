package bert

import (
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/loraqa/loraqa/torch"
)

func noGrad(fn func()) { torch.NoGrad(fn) }

// Batch is one batch of features: int64 tensors of shape [B, L]. TokenTypeIDs is
// used by BERT only; StartPositions and EndPositions ([B]) only for the loss.
type Batch struct {
	InputIDs, AttentionMask, TokenTypeIDs *ts.Tensor
	StartPositions, EndPositions          *ts.Tensor
}

// Drop frees the batch's tensors.
func (b Batch) Drop() {
	for _, t := range []*ts.Tensor{b.InputIDs, b.AttentionMask, b.TokenTypeIDs, b.StartPositions, b.EndPositions} {
		if t != nil {
			t.MustDrop()
		}
	}
}

// Output holds the logits ([B, L] each) and, when positions were given, the loss.
// The caller owns every tensor in it (Drop frees them).
type Output struct {
	StartLogits, EndLogits, Loss *ts.Tensor
}

// Drop frees the output tensors.
func (o Output) Drop() {
	for _, t := range []*ts.Tensor{o.StartLogits, o.EndLogits, o.Loss} {
		if t != nil {
			t.MustDrop()
		}
	}
}

// Forward runs the QA model. train switches dropout on. Every intermediate is
// dropped as soon as it is used; autograd keeps what backward needs.
func (m *Model) Forward(b Batch, train bool) Output {
	hidden := m.Encode(b, train)
	if hidden.DType() != gotch.Float {
		// A half-precision base: the QA head, its logits and the loss stay float32.
		hidden = hidden.MustTotype(gotch.Float, true)
	}
	p := 0.0
	if train {
		p = m.Config.QADropout
	}
	if p > 0 {
		hidden = dropout(hidden, p, train)
	}
	logits := m.QA.Forward(hidden, train) // [B, L, 2]
	hidden.MustDrop()
	parts := logits.MustSplit(1, -1, true)
	start := parts[0].MustSqueezeDim(-1, true)
	end := parts[1].MustSqueezeDim(-1, true)
	out := Output{StartLogits: start, EndLogits: end}
	if b.StartPositions != nil && b.EndPositions != nil {
		out.Loss = QALoss(start, end, b.StartPositions, b.EndPositions)
	}
	return out
}

// QALoss is HF's QA loss: positions clamped to [0, L], L as the ignore index,
// cross entropy over all positions (padding included), mean of start and end.
func QALoss(start, end, startPos, endPos *ts.Tensor) *ts.Tensor {
	L := start.MustSize()[1]
	ce := func(logits, pos *ts.Tensor) *ts.Tensor {
		p := pos.MustClamp(ts.IntScalar(0), ts.IntScalar(L), false)
		defer p.MustDrop()
		return logits.MustCrossEntropyLoss(p, ts.None, 1, L, 0, false)
	}
	ls, le := ce(start, startPos), ce(end, endPos)
	sum := ls.MustAdd(le, true)
	le.MustDrop()
	return sum.MustDivScalar(ts.FloatScalar(2), true)
}

// Encode returns the last hidden states [B, L, dim].
func (m *Model) Encode(b Batch, train bool) *ts.Tensor {
	cfg := m.Config
	var pos *ts.Tensor // [L], or RoBERTa's [B, L]
	if cfg.PaddedPositions() {
		pos = paddedPositionIDs(b.InputIDs, cfg.PadTokenID)
	} else {
		pos = ts.MustArange(ts.IntScalar(b.InputIDs.MustSize()[1]), gotch.Int64, m.Device)
	}
	var x *ts.Tensor
	if m.qWord != nil {
		x = m.qWord.Forward(b.InputIDs)
	} else {
		x = ts.MustEmbedding(m.WordEmb, b.InputIDs, -1, false, false)
	}
	pe := ts.MustEmbedding(m.PosEmb, pos, -1, false, false)
	pos.MustDrop()
	x = x.MustAdd(pe, true)
	pe.MustDrop()
	if m.TypeEmb != nil {
		var te *ts.Tensor
		if b.TokenTypeIDs != nil {
			te = ts.MustEmbedding(m.TypeEmb, b.TokenTypeIDs, -1, false, false)
		} else {
			t0 := m.TypeEmb.MustSelect(0, 0, false)
			te = t0.MustView([]int64{1, 1, cfg.Dim}, true)
		}
		x = x.MustAdd(te, true)
		te.MustDrop()
	}
	if x.DType() != gotch.Float {
		x = x.MustTotype(gotch.Float, true) // the hidden states stay float32 (see block)
	}
	h := m.EmbNorm.Forward(x)
	x.MustDrop()
	h = dropout(h, cfg.Dropout, train)

	fused := fusedAttention(sdpa, m.Device, train, cfg.AttentionDropout, torch.DropoutReplaced())
	var mask *ts.Tensor // nil: no key is padding (fused inference on the CPU)
	switch {
	case fused && !train && !m.Device.IsCuda() && noPadding(b.AttentionMask):
	case fused:
		mask = additiveMask4(b.AttentionMask, m.DType)
	default:
		mask = additiveMask(b.AttentionMask, m.DType, cfg.Heads)
	}
	if mask != nil {
		defer mask.MustDrop()
	}
	for _, blk := range m.Blocks {
		h = m.block(blk, h, mask, train, fused)
	}
	return h
}

// paddedPositionIDs are RoBERTa's position ids for input ids [B, L], as HF's
// create_position_ids_from_input_ids makes them: cumsum(mask)·mask + pad
// with mask = (ids != pad), so the real tokens count pad+1, pad+2, ... and
// padding sits at pad (the position table's zero-initialised padding row).
// The caller owns the result, int64 [B, L] on the ids' device.
func paddedPositionIDs(ids *ts.Tensor, pad int64) *ts.Tensor {
	mask := ids.MustNe(ts.IntScalar(pad), false).MustTotype(gotch.Int64, true)
	count := mask.MustCumsum(1, gotch.Int64, false)
	count = count.MustMul(mask, true)
	mask.MustDrop()
	return count.MustAddScalar(ts.IntScalar(pad), true)
}

// fusedAttention decides between scaled_dot_product_attention and the
// explicit path. In training on the CPU the attention probabilities are
// dropped out by torch.Dropout, which keeps a bool mask for the backward
// (the fused kernel, on LibTorch 2.1's CPU, keeps a float one: 4× the memory,
// the largest tensors of a step), and which a dropout set with
// torch.SetDropout must see: the explicit path then. On CUDA the fused
// kernels (flash, memory-efficient) drop out inside the kernel.
func fusedAttention(have bool, dev gotch.Device, train bool, attnDropout float64, dropoutReplaced bool) bool {
	if !have {
		return false
	}
	if !train || attnDropout == 0 {
		return true
	}
	return dev.IsCuda() && !dropoutReplaced
}

// noPadding reports whether a [B, L] 0/1 attention mask is all ones (a host
// read: Forward asks only on the CPU).
func noPadding(mask *ts.Tensor) bool {
	lowest := mask.MustMin(false)
	defer lowest.MustDrop()
	return lowest.Int64Values()[0] == 1
}

// additiveMask4 turns a [B, L] 0/1 attention mask into the [B, 1, 1, L]
// additive mask scaled_dot_product_attention takes: 0 for keys to attend and
// the dtype's most negative value for padding, which equals HF's masked_fill
// with finfo.min after the softmax.
func additiveMask4(mask *ts.Tensor, dtype gotch.DType) *ts.Tensor {
	size := mask.MustSize()
	minVal := -math.MaxFloat32
	if dtype == gotch.BFloat16 {
		minVal = -3.3895313892515355e38
	} else if dtype == gotch.Half {
		minVal = -65504
	}
	// (1 - mask) * min
	inv := mask.MustTotype(dtype, false).MustRsubScalar(ts.FloatScalar(1), true)
	add := inv.MustMulScalar(ts.FloatScalar(minVal), true)
	return add.MustView([]int64{size[0], 1, 1, size[1]}, true)
}

// additiveMask is additiveMask4 as [B·H, 1, L], for baddbmm.
func additiveMask(mask *ts.Tensor, dtype gotch.DType, heads int64) *ts.Tensor {
	size := mask.MustSize()
	return additiveMask4(mask, dtype).
		MustExpand([]int64{size[0], heads, 1, size[1]}, false, true).
		MustReshape([]int64{size[0] * heads, 1, size[1]}, true)
}

// sdpa: attention runs through LibTorch's fused scaled_dot_product_attention
// (PyTorch ≥ 2.0; transformers 5 runs DistilBERT and BERT through it too),
// about 8% faster than baddbmm + softmax + bmm on the CPU; Debian's 1.13 has
// no such op and keeps that path. LORAQA_ATTENTION=math forces it anywhere.
var sdpa = hasSDPA(torch.LibTorchVersion()) && os.Getenv("LORAQA_ATTENTION") != "math"

func hasSDPA(version string) bool {
	major, _, _ := strings.Cut(version, ".")
	n, err := strconv.Atoi(major)
	return err == nil && n >= 2
}

// dropout is torch.Dropout in train mode with p > 0 (consuming x), x otherwise.
func dropout(x *ts.Tensor, p float64, train bool) *ts.Tensor {
	if !train || p == 0 {
		return x
	}
	y := torch.Dropout(x, p)
	x.MustDrop()
	return y
}

// half casts a float32 hidden state to the base's dtype for its matmuls; with
// a float32 base it returns x itself.
func (m *Model) half(x *ts.Tensor) *ts.Tensor {
	if m.DType == x.DType() {
		return x
	}
	return x.MustTotype(m.DType, false)
}

// block is one post-LN transformer layer; it consumes x. mask is the additive
// key mask, [B, 1, 1, L] for fusedAttention (fused; nil when no key is
// padding) or [B·H, 1, L] for attention.
// With a half-precision base (bf16, fp16) it runs as autocast runs HF's layer: the linears and the attention in the base's dtype,
// the residual sums and the LayerNorms in float32, so x and the result are
// float32 whatever the base.
func (m *Model) block(blk *Block, x, mask *ts.Tensor, train, fused bool) *ts.Tensor {
	cfg := m.Config
	size := x.MustSize()
	B, L := size[0], size[1]
	xh := m.half(x)
	var ctx *ts.Tensor
	if fused {
		ctx = m.fusedAttention(blk, x, xh, mask, B, L, train)
	} else {
		ctx = m.attention(blk, x, xh, mask, B, L, train)
	}
	attn := blk.O.Forward(ctx, train)
	ctx.MustDrop()
	if cfg.BertLayout() { // BertSelfOutput (RobertaSelfOutput) drops out here; DistilBERT's block does not
		attn = dropout(attn, cfg.Dropout, train)
	}
	res := attn.MustAdd(x, true)
	x.MustDrop()
	h := blk.AttnNorm.Forward(res)
	res.MustDrop()

	hh := m.half(h)
	f := blk.FF1.Forward(hh, train)
	if hh != h {
		hh.MustDrop()
	}
	if cfg.Activation == "relu" {
		f = f.MustRelu(true)
	} else {
		f = f.MustGelu("none", true)
	}
	f2 := blk.FF2.Forward(f, train)
	f.MustDrop()
	f2 = dropout(f2, cfg.Dropout, train)
	res2 := f2.MustAdd(h, true)
	h.MustDrop()
	out := blk.OutNorm.Forward(res2)
	res2.MustDrop()
	return out
}

// fusedAttention is attention through scaled_dot_product_attention; mask is
// [B, 1, 1, L], or nil for none (inference only). It drops xh when it is a
// copy of x.
func (m *Model) fusedAttention(blk *Block, x, xh, mask *ts.Tensor, B, L int64, train bool) *ts.Tensor {
	cfg := m.Config
	H, dh := cfg.Heads, cfg.Dim/cfg.Heads
	split := func(t *ts.Tensor) *ts.Tensor { // [B, L, D] -> [B, H, L, dh] (a view)
		return t.MustView([]int64{B, L, H, dh}, true).MustTranspose(1, 2, true)
	}
	q := split(blk.Q.Forward(xh, train))
	k := split(blk.K.Forward(xh, train))
	v := split(blk.V.Forward(xh, train))
	if xh != x {
		xh.MustDrop()
	}
	p := 0.0
	if train {
		p = cfg.AttentionDropout
	}
	var ctx *ts.Tensor
	if mask == nil { // as transformers calls it without padding: LibTorch's flash kernel on the CPU
		ctx = torch.AttentionUnmasked(q, k, v)
	} else {
		ctx = ts.MustScaledDotProductAttention(q, k, v, mask, p, false, nil)
	}
	q.MustDrop()
	k.MustDrop()
	v.MustDrop()
	return ctx.MustTranspose(1, 2, true).MustContiguous(true).MustView([]int64{B, L, cfg.Dim}, true)
}

// attention is softmax(q·kᵀ/√dh + mask)·v with baddbmm and bmm; x is the
// block input, xh its half-precision copy (or x, dropped when a copy), mask [B·H, 1, L].
func (m *Model) attention(blk *Block, x, xh, mask *ts.Tensor, B, L int64, train bool) *ts.Tensor {
	cfg := m.Config
	H, dh := cfg.Heads, cfg.Dim/cfg.Heads
	heads := func(t *ts.Tensor) *ts.Tensor { // [B, L, D] -> [B·H, L, dh]
		return t.MustView([]int64{B, L, H, dh}, true).MustTranspose(1, 2, true).MustReshape([]int64{B * H, L, dh}, true)
	}
	q := heads(blk.Q.Forward(xh, train))
	k := heads(blk.K.Forward(xh, train))
	v := heads(blk.V.Forward(xh, train))
	if xh != x {
		xh.MustDrop()
	}
	kt := k.MustTranspose(-1, -2, true)
	// scores = mask + (q·kᵀ)/√dh in one GEMM call.
	scores := mask.MustBaddbmm(q, kt, ts.FloatScalar(1), ts.FloatScalar(1/math.Sqrt(float64(dh))), false)
	q.MustDrop()
	kt.MustDrop()
	w := scores.MustSoftmax(-1, scores.DType(), true)
	w = dropout(w, cfg.AttentionDropout, train)
	ctx := w.MustBmm(v, true)
	v.MustDrop()
	return ctx.MustView([]int64{B, H, L, dh}, true).MustTranspose(1, 2, true).MustContiguous(true).MustView([]int64{B, L, cfg.Dim}, true)
}
