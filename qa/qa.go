// Package qa is the forward pass that training, evaluation and inference
// share: windows (data.Feature) in, start and end logits out, in batches on
// the model's device. It sits between data and bert so that neither the
// trainer nor the inference engine imports the other.
package qa

import (
	"context"
	"fmt"

	"github.com/sugarme/gotch"

	"github.com/loraqa/loraqa/bert"
	"github.com/loraqa/loraqa/data"
	"github.com/loraqa/loraqa/internal/faults"
	"github.com/loraqa/loraqa/torch"
)

// ToDevice copies a data batch into int64 tensors on dev; with labels, the
// answer positions too. The caller drops the batch.
func ToDevice(b *data.Batch, dev gotch.Device, labels bool) bert.Batch {
	shape := b.Shape()
	rows := []int64{shape[0]}
	parts, shapes := [][]int64{b.InputIDs, b.AttentionMask}, [][]int64{shape, shape}
	if b.TokenTypeIDs != nil {
		parts, shapes = append(parts, b.TokenTypeIDs), append(shapes, shape)
	}
	if labels {
		parts, shapes = append(parts, b.StartPositions, b.EndPositions), append(shapes, rows, rows)
	}
	v := torch.UploadInt64(parts, shapes, dev) // one copy for the whole batch
	in := bert.Batch{InputIDs: v[0], AttentionMask: v[1]}
	v = v[2:]
	if b.TokenTypeIDs != nil {
		in.TokenTypeIDs, v = v[0], v[1:]
	}
	if labels {
		in.StartPositions, in.EndPositions = v[0], v[1]
	}
	return in
}

// Logits runs the model (in eval mode, without gradients) over feats in
// batches of batchSize and returns each window's start and end logits, as
// long as its tokens. With withLoss it also returns the mean loss over the
// windows (their answer positions are the labels). A LibTorch failure (out
// of memory, an index out of range) is returned as an error wrapping a
// *torch.Error, after the tensors of the failed batch are freed (torch.Guard);
// ctx is checked between batches.
func Logits(ctx context.Context, m *bert.Model, feats []data.Feature, batchSize int, withLoss bool) (starts, ends [][]float32, meanLoss float64, err error) {
	return logits(ctx, m, feats, batchSize, withLoss, nil)
}

// LogitsRouted is Logits without the loss, calling before(idx) ahead of each
// forward with the features (indices into feats) that make its batch, in
// row order: a peft.Mixture routes each row to its adapter there.
func LogitsRouted(ctx context.Context, m *bert.Model, feats []data.Feature, batchSize int, before func(idx []int)) (starts, ends [][]float32, err error) {
	starts, ends, _, err = logits(ctx, m, feats, batchSize, false, before)
	return starts, ends, err
}

func logits(ctx context.Context, m *bert.Model, feats []data.Feature, batchSize int, withLoss bool, before func(idx []int)) (starts, ends [][]float32, meanLoss float64, err error) {
	b, err := data.NewBatcher(feats, data.BatchOptions{BatchSize: batchSize, BucketBatches: 0, PadID: m.Config.PadTokenID})
	if err != nil {
		return nil, nil, 0, err
	}
	starts, ends = make([][]float32, len(feats)), make([][]float32, len(feats))
	var lossSum float64
	var n int
	// Guard frees what a failed batch left (its inputs, activations and
	// outputs) at once, rather than when Go's GC runs.
	lerr := torch.Guard(func() {
		torch.NoGrad(func() {
			for bi, idx := range b.Plan(0) {
				if err = ctx.Err(); err != nil {
					return
				}
				batch := b.Make(idx)
				in := ToDevice(batch, m.Device, withLoss)
				if before != nil {
					before(idx)
				}
				out := m.Forward(in, false)
				faults.Forward(bi)
				s, e := torch.ToFloat32(out.StartLogits), torch.ToFloat32(out.EndLogits)
				if withLoss {
					lossSum += float64(torch.ToFloat32(out.Loss)[0]) * float64(len(idx))
					n += len(idx)
				}
				out.Drop()
				in.Drop()
				L := batch.SeqLen
				for r, fi := range idx {
					fl := len(feats[fi].InputIDs)
					starts[fi] = s[r*L : r*L+fl]
					ends[fi] = e[r*L : r*L+fl]
				}
			}
		})
	})
	if lerr != nil {
		return nil, nil, 0, fmt.Errorf("forward pass: %w", lerr)
	}
	if n > 0 {
		meanLoss = lossSum / float64(n)
	}
	return starts, ends, meanLoss, err
}
