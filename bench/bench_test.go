package bench

import (
	"math/rand"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/loraqa/loraqa/bert"
	"github.com/loraqa/loraqa/data"
	"github.com/loraqa/loraqa/internal/testutil"
	"github.com/loraqa/loraqa/peft"
	"github.com/loraqa/loraqa/torch"
	"github.com/loraqa/loraqa/train"
)

func randBatch(B, L int, vocab int64) *data.Batch {
	r := rand.New(rand.NewSource(1))
	b := &data.Batch{Rows: B, SeqLen: L, InputIDs: make([]int64, B*L), AttentionMask: make([]int64, B*L),
		StartPositions: make([]int64, B), EndPositions: make([]int64, B)}
	for i := range b.InputIDs {
		b.InputIDs[i] = 1000 + r.Int63n(vocab-1000)
		b.AttentionMask[i] = 1
	}
	for i := 0; i < B; i++ {
		b.StartPositions[i], b.EndPositions[i] = int64(1+i), int64(3+i)
	}
	return b
}

// BenchmarkLoRALinear: forward and backward of a 768→768 LoRA linear (r 16) on
// 8 × 128 tokens, base frozen.
func BenchmarkLoRALinear(b *testing.B) {
	torch.ManualSeed(0)
	w := ts.MustRandn([]int64{768, 768}, gotch.Float, gotch.CPU)
	bias := ts.MustZeros([]int64{768}, gotch.Float, gotch.CPU)
	l := &peft.Linear{Base: &bert.Linear{Weight: w, Bias: bias}, Scaling: 2, Dropout: 0.05,
		A: ts.MustRandn([]int64{16, 768}, gotch.Float, gotch.CPU).MustSetRequiresGrad(true, true),
		B: ts.MustRandn([]int64{768, 16}, gotch.Float, gotch.CPU).MustSetRequiresGrad(true, true)}
	x := ts.MustRandn([]int64{8, 128, 768}, gotch.Float, gotch.CPU)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		y := l.Forward(x, true)
		s := y.MustSum(gotch.Float, true)
		s.MustBackward()
		s.MustDrop()
		train.ZeroGrad([]peft.Param{{Tensor: l.A}, {Tensor: l.B}})
	}
}

// BenchmarkEncoderLayer: one distilbert-base encoder layer (attention + FFN) in
// eval mode on 8 × 128 tokens.
func BenchmarkEncoderLayer(b *testing.B) {
	cfg := bert.DefaultDistilBERTConfig()
	cfg.Layers = 1
	m, err := bert.New(cfg, gotch.CPU, gotch.Float)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Drop()
	m.Init()
	bt := randBatch(8, 128, cfg.VocabSize)
	in := bert.Batch{InputIDs: torch.FromInt64(bt.InputIDs, bt.Shape(), gotch.CPU), AttentionMask: torch.FromInt64(bt.AttentionMask, bt.Shape(), gotch.CPU)}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		torch.NoGrad(func() { m.Encode(in, false).MustDrop() })
	}
}

// BenchmarkTrainStepTiny: one full training step (forward, backward, clipping,
// AdamW) on the tiny fixture's shape, 8 × 128.
func BenchmarkTrainStepTiny(b *testing.B) {
	cfg := bert.TinyDistilBERTConfig()
	m, err := bert.New(cfg, gotch.CPU, gotch.Float)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Drop()
	m.Init()
	a, err := peft.Inject(m, peft.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	defer a.Drop()
	o := train.DefaultOptions()
	tr := &train.Trainer{Model: m, Adapter: a, Train: []data.Feature{{InputIDs: []int64{0}, AttentionMask: []int64{1}}}, Opt: o}
	defer tr.Close()
	bt := randBatch(8, 128, cfg.VocabSize)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := tr.Step(bt); err != nil {
			b.Fatal(err)
		}
	}
}

// featurize benchmarks windows of 384 / stride 128 over the examples of a
// SQuAD-format file, with the generated bert-base-uncased tokenizer.
func featurize(b *testing.B, squad string, n int) {
	tok, err := data.LoadTokenizer(testutil.Tokenizer(b))
	if err != nil {
		b.Fatal(err)
	}
	rr, err := data.ReadFile(squad, "squad")
	if err != nil {
		b.Fatal(err)
	}
	ex := data.BuildDataset(rr, data.BuildOptions{})
	if len(ex) > n {
		ex = ex[:n]
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := data.Featurize(tok, ex, data.DefaultFeatureOptions()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFeaturizeSQuADSample: featurize over the 300 questions of the
// committed SQuAD sample. (SQuAD dev: BenchmarkRealDataFeaturizeSQuAD.)
func BenchmarkFeaturizeSQuADSample(b *testing.B) {
	featurize(b, testutil.Committed(b, "squad-sample.json"), 300)
}
