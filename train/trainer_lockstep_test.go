package train_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"

	"github.com/loraqa/loraqa/bert"
	"github.com/loraqa/loraqa/data"
	"github.com/loraqa/loraqa/internal/testutil"
	"github.com/loraqa/loraqa/peft"
	"github.com/loraqa/loraqa/train"
)

// The lockstep tolerances: float32 arithmetic in two LibTorch versions
// (loraqa's and the reference's torch) with different kernels (SDPA here,
// eager attention there; foreach AdamW here, fused there).
const (
	lockstepLossTol   = 5e-6 // every step's training loss, every evaluation's loss
	lockstepWeightTol = 1e-5 // every trained adapter value after the run
)

// lockstepFeature is a feature as scripts/ref/hf_trainer_lockstep.py reads it.
type lockstepFeature struct {
	InputIDs      []int64 `json:"input_ids"`
	AttentionMask []int64 `json:"attention_mask"`
	TokenTypeIDs  []int64 `json:"token_type_ids"`
	Start         int     `json:"start"`
	End           int     `json:"end"`
}

// hfLockstep is what the script reports: transformers.Trainer's log history.
type hfLockstep struct {
	Train []struct {
		Step     int64   `json:"step"`
		Loss     float64 `json:"loss"`
		GradNorm float64 `json:"grad_norm"`
		LR       float64 `json:"learning_rate"`
	} `json:"train"`
	Eval []struct {
		Step     int64   `json:"step"`
		EvalLoss float64 `json:"eval_loss"`
	} `json:"eval"`
	Seen     [][]int  `json:"seen"`
	Optim    string   `json:"optim"`
	Decay    []string `json:"decay"`
	NoDecay  []string `json:"no_decay"`
	Warnings []string `json:"warnings"`
}

// synthFeatures makes n single-window QA features without a tokenizer: [CLS]
// 3–6 question ids [SEP] context ids [SEP], 12–40 tokens (so batches pad),
// ids below the fixture's vocabulary, the answer a
// span of 1–4 context tokens or, for about a fifth, [CLS] (no answer). The
// context is one letter per token, so that the evaluation's post-processing
// has offsets to work on. Every token type is 0: PEFT's
// PeftModelForQuestionAnswering (0.21) does not pass token_type_ids on to the
// model, so under transformers.Trainer BERT sees type 0 everywhere.
func synthFeatures(n int, seed uint64, prefix string) ([]data.Feature, []data.Example, []lockstepFeature) {
	r := rand.New(rand.NewPCG(seed, 17))
	feats, exs, js := make([]data.Feature, n), make([]data.Example, n), make([]lockstepFeature, n)
	for i := range feats {
		L, q := 12+r.IntN(29), 3+r.IntN(4)
		f := data.Feature{ExampleID: fmt.Sprintf("%s%d", prefix, i), ExampleIndex: i}
		f.InputIDs = append(f.InputIDs, 2)
		for range q {
			f.InputIDs = append(f.InputIDs, 5+r.Int64N(995))
		}
		f.InputIDs = append(f.InputIDs, 3)
		for len(f.InputIDs) < L-1 {
			f.InputIDs = append(f.InputIDs, 5+r.Int64N(995))
		}
		f.InputIDs = append(f.InputIDs, 3)
		ctx := L - q - 3 // context tokens: q+2 … L-2
		for k := range L {
			f.AttentionMask = append(f.AttentionMask, 1)
			f.TokenTypeIDs = append(f.TokenTypeIDs, 0)
			if j := k - (q + 2); j >= 0 && j < ctx {
				f.Offsets = append(f.Offsets, [2]int{2 * j, 2*j + 1})
			} else {
				f.Offsets = append(f.Offsets, data.NoOffset)
			}
		}
		s := r.IntN(ctx)
		e := min(ctx-1, s+r.IntN(4))
		context := strings.Repeat("w ", ctx)
		exs[i] = data.Example{ID: f.ExampleID, Question: "q", Context: context,
			Answers: data.Answers{Text: []string{context[2*s : 2*e+1]}, AnswerStart: []int{2 * s}}}
		if r.IntN(5) > 0 {
			f.StartPosition, f.EndPosition = q+2+s, q+2+e
		}
		feats[i] = f
		js[i] = lockstepFeature{f.InputIDs, f.AttentionMask, f.TokenTypeIDs, f.StartPosition, f.EndPosition}
	}
	return feats, exs, js
}

// loraqaRun is loraqa's side of a lockstep run.
type loraqaRun struct {
	losses, gradNorms, lrs []float64 // per step, from metrics.jsonl
	evalLosses             []float64 // per epoch, from metrics.jsonl
	weights                map[string]bert.HostTensor
	decay                  map[string]bool
}

// runLoraqa trains the PEFT-made adapter in initDir on the fixture's base with
// loraqa's Trainer, every dropout off, and reads back its metrics.jsonl and
// its saved adapter.
func runLoraqa(t *testing.T, base, initDir string, tr, ev []data.Feature, evEx []data.Example, opts train.Options) loraqaRun {
	t.Helper()
	m, err := bert.Load(base, bert.LoadOptions{Device: gotch.CPU})
	require.NoError(t, err)
	defer m.Drop()
	m.Config.Dropout, m.Config.AttentionDropout, m.Config.QADropout = 0, 0, 0
	a, err := peft.Load(initDir, m)
	require.NoError(t, err)
	defer a.Drop()
	for k, l := range a.Layers {
		require.Zero(t, l.Dropout, "lora_dropout of %s", k)
	}
	opts.OutputDir = t.TempDir()
	trainer := &train.Trainer{Model: m, Adapter: a, Train: tr, Eval: ev, EvalExamples: evEx, Opt: opts}
	defer trainer.Close()
	_, err = trainer.Run(context.Background())
	require.NoError(t, err)
	out := t.TempDir()
	require.NoError(t, a.Save(out))
	run := loraqaRun{decay: map[string]bool{}}
	run.weights, err = bert.ReadSafetensors(filepath.Join(out, peft.WeightsFile))
	require.NoError(t, err)
	for _, p := range a.Params() {
		run.decay[p.Key] = p.Decay
	}
	recs, err := train.ReadMetrics(opts.OutputDir)
	require.NoError(t, err)
	for _, rec := range recs {
		switch rec.Type {
		case "train":
			require.Equal(t, int64(len(run.losses)+1), rec.Step, "one train record per step")
			run.losses = append(run.losses, rec.Loss)
			run.gradNorms = append(run.gradNorms, rec.GradNorm)
			run.lrs = append(run.lrs, rec.LR)
		case "eval":
			run.evalLosses = append(run.evalLosses, rec.EvalLoss)
		}
	}
	return run
}

// lockstepDiffs: the largest per-step training loss difference, the largest
// evaluation loss difference, and the largest trained-weight difference (with
// its key) between a loraqa run and the Trainer's.
func lockstepDiffs(t *testing.T, got loraqaRun, want hfLockstep, wantWeights map[string]bert.HostTensor) (dLoss, dEval, dW float64, worstKey string) {
	t.Helper()
	require.Len(t, got.losses, len(want.Train), "steps")
	require.Len(t, got.evalLosses, len(want.Eval), "evaluations")
	for i, h := range want.Train {
		require.Equal(t, int64(i+1), h.Step)
		dLoss = max(dLoss, math.Abs(got.losses[i]-h.Loss))
	}
	for i, h := range want.Eval {
		dEval = max(dEval, math.Abs(got.evalLosses[i]-h.EvalLoss))
	}
	require.Len(t, got.weights, len(wantWeights), "adapter tensors")
	for k, w := range wantWeights {
		g, ok := got.weights[k]
		require.True(t, ok, "loraqa's adapter holds %s", k)
		require.Equal(t, w.Shape, g.Shape, k)
		// qa_outputs.bias shifts every position's logit alike: its gradient is
		// analytically zero (each softmax sums to 1), and Adam turns its float32
		// noise into steps of up to lr. It is compared only through the losses.
		if strings.HasSuffix(k, "qa_outputs.bias") {
			continue
		}
		for i := range w.Data {
			if d := math.Abs(float64(g.Data[i] - w.Data[i])); d > dW {
				dW, worstKey = d, k
			}
		}
	}
	return dLoss, dEval, dW, worstKey
}

// TestHFTrainerLockstep: transformers.Trainer itself (scripts/ref/
// hf_trainer_lockstep.py) and loraqa's Trainer, from the same PEFT-made
// adapter on the BERT fixture, with the same batches in the same order
// (loraqa's shuffle, handed to the Trainer's sampler), every dropout off, and
// the seed's defaults (lr 2e-5, batch 8, weight decay 0.01, linear schedule
// without warmup, clipping at 1, AdamW, evaluation after each of 2 epochs),
// agree at every step: the training loss within lockstepLossTol, the
// gradient norm and learning rate, each evaluation's loss, and the trained
// adapter within lockstepWeightTol. A second case (lr 5e-3, weight decay 0.1)
// moves the weights 250 times as far and makes the decay large enough to see.
// Controls: in both cases a loraqa run with lr ×1.1 must fail the loss
// comparison, and in the second one without weight decay the weight
// comparison (at the seed's lr 2e-5 a decay of 0.01 moves a weight by ~1e-7
// in 10 steps, below any float32-honest tolerance).
func TestHFTrainerLockstep(t *testing.T) {
	testutil.RefPython(t)
	base := filepath.Join(testutil.RepoRoot(t), "testdata", "tiny-bert-qa", "base")
	trF, _, trJ := synthFeatures(36, 1, "train")
	evF, evEx, evJ := synthFeatures(12, 2, "eval")
	for _, tc := range []struct {
		name      string
		lr, wd    float64
		wdControl bool
	}{
		{"seed defaults", 0, 0, false},
		{"lr 5e-3 weight decay 0.1", 5e-3, 0.1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := train.DefaultOptions()
			opts.Epochs, opts.EvalBatchSize, opts.LogEvery, opts.LoadBestAtEnd, opts.SaveTotalLimit, opts.Threads = 2, 8, 1, false, 1, 1
			args := map[string]any{}
			if tc.lr == 0 {
				require.Equal(t, 2e-5, opts.LR)
				require.Equal(t, 0.01, opts.WeightDecay)
			} else {
				opts.LR, opts.WeightDecay = tc.lr, tc.wd
				args["learning_rate"], args["weight_decay"] = tc.lr, tc.wd
			}
			// The Trainer defaults of the script are the seed's, which are loraqa's.
			require.Equal(t, 8, opts.BatchSize)
			require.Equal(t, 1.0, opts.MaxGradNorm)
			require.Equal(t, "linear", opts.Scheduler)
			require.Zero(t, opts.WarmupRatio)
			require.Zero(t, opts.WarmupSteps)
			b, err := data.NewBatcher(trF, data.BatchOptions{BatchSize: opts.BatchSize, Shuffle: true, Seed: uint64(opts.Seed)})
			require.NoError(t, err)
			var order, plan [][]int
			for e := range opts.Epochs {
				var o []int
				for _, idx := range b.Plan(e) {
					o = append(o, idx...)
					plan = append(plan, idx)
				}
				order = append(order, o)
			}
			initDir, outDir := t.TempDir(), t.TempDir()
			req := map[string]any{"base": base, "init": initDir, "out": outDir, "work": t.TempDir(), "seed": 3,
				"lora": map[string]any{"r": 4, "lora_alpha": 8, "target_modules": []string{"query", "value"}},
				"args": args, "train": trJ, "eval": evJ, "order": order}
			var hf hfLockstep
			testutil.RunRef(t, "hf_trainer_lockstep.py", req, &hf)
			t.Logf("Trainer: optim %s, warnings %q", hf.Optim, hf.Warnings)
			require.Equal(t, plan, hf.Seen, "the Trainer's batches are loraqa's")
			require.Len(t, hf.Train, 10, "5 steps per epoch, 2 epochs")
			require.Len(t, hf.Eval, 2, "one evaluation per epoch")
			hfWeights, err := bert.ReadSafetensors(filepath.Join(outDir, peft.WeightsFile))
			require.NoError(t, err)

			got := runLoraqa(t, base, initDir, trF, evF, evEx, opts)
			// HF's decay groups, name by name.
			names := strings.NewReplacer(".modules_to_save.default.", ".", ".default.", ".")
			require.Len(t, got.decay, len(hf.Decay)+len(hf.NoDecay))
			for _, n := range hf.Decay {
				assert.True(t, got.decay[names.Replace(n)], "%s decays", n)
			}
			for _, n := range hf.NoDecay {
				d, ok := got.decay[names.Replace(n)]
				assert.True(t, ok && !d, "%s is trained without decay", n)
			}
			dLoss, dEval, dW, worst := lockstepDiffs(t, got, hf, hfWeights)
			dNorm, dLR := 0.0, 0.0
			for i, h := range hf.Train {
				dNorm = max(dNorm, math.Abs(got.gradNorms[i]-h.GradNorm)/h.GradNorm)
				dLR = max(dLR, math.Abs(got.lrs[i]-h.LR))
				t.Logf("step %2d: loss %.7f (Trainer %.7f, |Δ| %.1e), grad norm %.5f (Trainer %.5f), lr %.3g", i+1, got.losses[i], h.Loss, math.Abs(got.losses[i]-h.Loss), got.gradNorms[i], h.GradNorm, h.LR)
			}
			for i, h := range hf.Eval {
				t.Logf("eval %d (step %d): loss %.7f (Trainer %.7f)", i+1, h.Step, got.evalLosses[i], h.EvalLoss)
			}
			t.Logf("max |Δ|: step loss %.2e, eval loss %.2e (tolerance %.0e); trained weights %.2e (%s; tolerance %.0e); grad norm rel. %.1e; lr %.1e",
				dLoss, dEval, lockstepLossTol, dW, worst, lockstepWeightTol, dNorm, dLR)
			assert.Less(t, dLoss, lockstepLossTol, "per-step training loss")
			assert.Less(t, dEval, lockstepLossTol, "evaluation loss")
			assert.Less(t, dW, lockstepWeightTol, "trained adapter")
			assert.Less(t, dNorm, 1e-4, "gradient norm before clipping")
			assert.Less(t, dLR, 1e-12, "learning rate of each step")
			first, last := hf.Train[0].Loss, hf.Train[len(hf.Train)-1].Loss
			t.Logf("Trainer's loss %.4f -> %.4f", first, last)

			// The comparison can fail: another learning rate, or (where lr·decay
			// is large enough to matter within 10 steps) no weight decay, on
			// loraqa's side leaves the tolerances.
			wrong := opts
			wrong.LR = opts.LR * 1.1
			dLoss, _, dW, _ = lockstepDiffs(t, runLoraqa(t, base, initDir, trF, evF, evEx, wrong), hf, hfWeights)
			t.Logf("control lr ×1.1: step loss |Δ| %.2e, weights |Δ| %.2e", dLoss, dW)
			assert.Greater(t, dLoss, lockstepLossTol, "a learning rate 10 percent off shows in the losses")
			if !tc.wdControl {
				return
			}
			wrong = opts
			wrong.WeightDecay = 0
			_, _, dW, worst = lockstepDiffs(t, runLoraqa(t, base, initDir, trF, evF, evEx, wrong), hf, hfWeights)
			t.Logf("control weight decay 0: weights |Δ| %.2e (%s)", dW, worst)
			assert.Greater(t, dW, lockstepWeightTol, "missing weight decay shows in the trained adapter")
		})
	}
}
