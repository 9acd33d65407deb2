package data

import (
	"fmt"
	"iter"
	"sort"
)

// BatchOptions configures a Batcher.
type BatchOptions struct {
	BatchSize int
	// PadTo is the length every batch is padded to (max_seq_length); 0 pads
	// each batch to its longest feature.
	PadTo int
	// Shuffle reorders the features every epoch, from Seed and the epoch.
	Shuffle bool
	Seed    uint64
	// BucketBatches > 1 groups features of similar length: the (shuffled)
	// features are cut into buckets of BucketBatches·BatchSize, each bucket
	// is sorted by length and cut into batches, and the batches are shuffled.
	// It saves padding when PadTo is 0.
	BucketBatches int
	// DropLast drops a last batch smaller than BatchSize.
	DropLast bool
	// PadID fills input_ids past a feature's end ([PAD], 0 for BERT).
	PadID int64
}

// Batch is a padded batch, every tensor flat and row-major.
type Batch struct {
	Features []int // indices of the features in this batch, row by row
	Rows     int
	SeqLen   int
	// InputIDs, AttentionMask and TokenTypeIDs have Rows·SeqLen values;
	// padding is PadID, 0 and 0.
	InputIDs      []int64
	AttentionMask []int64
	TokenTypeIDs  []int64
	// StartPositions and EndPositions have Rows values.
	StartPositions []int64
	EndPositions   []int64
}

// Shape is [Rows, SeqLen], the shape of InputIDs.
func (b *Batch) Shape() []int64 { return []int64{int64(b.Rows), int64(b.SeqLen)} }

// Batcher cuts features into padded batches.
type Batcher struct {
	feats []Feature
	opts  BatchOptions
}

// NewBatcher checks the options and the features (a feature longer than
// PadTo is an error).
func NewBatcher(feats []Feature, opts BatchOptions) (*Batcher, error) {
	if opts.BatchSize <= 0 {
		return nil, fmt.Errorf("batcher: batch size %d is not positive", opts.BatchSize)
	}
	if opts.PadTo < 0 || opts.BucketBatches < 0 {
		return nil, fmt.Errorf("batcher: pad_to %d and bucket batches %d must not be negative", opts.PadTo, opts.BucketBatches)
	}
	for i := range feats {
		f := &feats[i]
		n := len(f.InputIDs)
		if len(f.AttentionMask) != n || (f.TokenTypeIDs != nil && len(f.TokenTypeIDs) != n) {
			return nil, fmt.Errorf("batcher: feature %d (%q window %d): input_ids, attention_mask and token_type_ids differ in length", i, f.ExampleID, f.Window)
		}
		if opts.PadTo > 0 && n > opts.PadTo {
			return nil, fmt.Errorf("batcher: feature %d (%q window %d) has %d tokens, more than pad_to %d", i, f.ExampleID, f.Window, n, opts.PadTo)
		}
	}
	return &Batcher{feats: feats, opts: opts}, nil
}

// Len is the number of batches in an epoch.
func (b *Batcher) Len() int {
	n := len(b.feats) / b.opts.BatchSize
	if !b.opts.DropLast && len(b.feats)%b.opts.BatchSize != 0 {
		n++
	}
	return n
}

// Plan returns the feature indices of each batch of an epoch. It depends
// only on the options, the features' lengths and the epoch.
func (b *Batcher) Plan(epoch int) [][]int {
	idx := make([]int, len(b.feats))
	for i := range idx {
		idx[i] = i
	}
	r := newRNG(b.opts.Seed, uint64(epoch)+1)
	if b.opts.Shuffle {
		r.shuffle(idx)
	}
	bs := b.opts.BatchSize
	if b.opts.BucketBatches > 1 {
		size := b.opts.BucketBatches * bs
		for start := 0; start < len(idx); start += size {
			bucket := idx[start:min(start+size, len(idx))]
			sort.SliceStable(bucket, func(i, j int) bool {
				return len(b.feats[bucket[i]].InputIDs) < len(b.feats[bucket[j]].InputIDs)
			})
		}
	}
	var plan [][]int
	for start := 0; start < len(idx); start += bs {
		end := min(start+bs, len(idx))
		if end-start < bs && b.opts.DropLast {
			break
		}
		plan = append(plan, idx[start:end])
	}
	if b.opts.Shuffle && b.opts.BucketBatches > 1 {
		order := make([]int, len(plan))
		for i := range order {
			order[i] = i
		}
		r.shuffle(order)
		shuffled := make([][]int, len(plan))
		for i, o := range order {
			shuffled[i] = plan[o]
		}
		plan = shuffled
	}
	return plan
}

// Make builds the padded batch of the given features.
func (b *Batcher) Make(indices []int) *Batch {
	seq := b.opts.PadTo
	if seq == 0 {
		for _, i := range indices {
			seq = max(seq, len(b.feats[i].InputIDs))
		}
	}
	rows := len(indices)
	out := &Batch{
		Features: append([]int(nil), indices...), Rows: rows, SeqLen: seq,
		InputIDs:       make([]int64, rows*seq),
		AttentionMask:  make([]int64, rows*seq),
		TokenTypeIDs:   make([]int64, rows*seq),
		StartPositions: make([]int64, rows),
		EndPositions:   make([]int64, rows),
	}
	for r, i := range indices {
		f := &b.feats[i]
		row := out.InputIDs[r*seq : (r+1)*seq]
		n := copy(row, f.InputIDs)
		for k := n; k < seq; k++ {
			row[k] = b.opts.PadID
		}
		copy(out.AttentionMask[r*seq:(r+1)*seq], f.AttentionMask)
		copy(out.TokenTypeIDs[r*seq:(r+1)*seq], f.TokenTypeIDs)
		out.StartPositions[r] = int64(f.StartPosition)
		out.EndPositions[r] = int64(f.EndPosition)
	}
	return out
}

// Epoch yields the batches of an epoch with their number, made one at a time.
func (b *Batcher) Epoch(epoch int) iter.Seq2[int, *Batch] {
	return func(yield func(int, *Batch) bool) {
		for k, idx := range b.Plan(epoch) {
			if !yield(k, b.Make(idx)) {
				return
			}
		}
	}
}
