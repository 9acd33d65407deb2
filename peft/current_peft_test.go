package peft_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/loraqa/loraqa/bert"
	"github.com/loraqa/loraqa/internal/testutil"
	"github.com/loraqa/loraqa/peft"
	"github.com/loraqa/loraqa/torch"
	"github.com/loraqa/loraqa/torch/safetensors"
	"github.com/loraqa/loraqa/train"
)

// The adapter_config.json features of current PEFT, each checked both ways
// against the reference environment (PEFT 0.21, transformers 5): PEFT makes an
// adapter with non-trivial weights (scripts/ref/peft_make.py), loraqa loads it
// and reproduces PEFT's logits and merged logits; loraqa saves it again and
// PEFT loads that file without a warning and with the same logits; loraqa's
// merged export loads in transformers with the same logits. Where a case
// trains, three AdamW steps (dropout off) agree in loss and in every trained
// tensor.

const goldenTol = 1e-4

var (
	bertIDs  = [][]int64{{2, 17, 99, 3, 400, 401, 402, 3}, {2, 18, 3, 500, 501, 3, 0, 0}}
	bertMask = [][]int64{{1, 1, 1, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 1, 1, 0, 0}}
)

func peftMake(t *testing.T, base, out string, cfg map[string]any, trainOut string) (s, e, ms, me [][]float64, losses []float64) {
	req := map[string]any{"base": base, "out": out, "config": cfg, "seed": 3, "input_ids": bertIDs, "attention_mask": bertMask}
	if trainOut != "" {
		req["train"] = map[string]any{"steps": 3, "lr": 1e-2, "weight_decay": 0.01, "start_positions": []int{4, 3}, "end_positions": []int{6, 4}, "out": trainOut}
	}
	var res struct {
		S  [][]float64 `json:"start_logits"`
		E  [][]float64 `json:"end_logits"`
		MS [][]float64 `json:"merged_start_logits"`
		ME [][]float64 `json:"merged_end_logits"`
		L  []float64   `json:"losses"`
	}
	testutil.RunRef(t, "peft_make.py", req, &res)
	return res.S, res.E, res.MS, res.ME, res.L
}

func diff2(s, e []float32, ws, we [][]float64) float64 {
	return max(maxDiff(s, ws), maxDiff(e, we))
}

var currentPEFTCases = []struct {
	name  string
	cfg   map[string]any
	train bool
	check func(t *testing.T, a *peft.Adapter)
}{
	{"alpha_pattern", map[string]any{"r": 4, "lora_alpha": 8, "target_modules": []string{"query", "value", "dense"},
		"alpha_pattern": map[string]any{"layer.1.attention.self.value": 32, "intermediate.dense": 2}}, false,
		func(t *testing.T, a *peft.Adapter) {
			assert.Equal(t, 8.0, a.Layers["bert.encoder.layer.1.attention.self.value"].Scaling)
			assert.Equal(t, 0.5, a.Layers["bert.encoder.layer.0.intermediate.dense"].Scaling)
			assert.Equal(t, 2.0, a.Layers["bert.encoder.layer.0.attention.self.value"].Scaling)
		}},
	{"rank_pattern", map[string]any{"r": 4, "lora_alpha": 8, "target_modules": []string{"query", "value"}, "use_rslora": true,
		"rank_pattern": map[string]any{`layer\.0\..*query`: 2, "value": 6}}, false,
		func(t *testing.T, a *peft.Adapter) {
			assert.Equal(t, []int64{2, 32}, a.Layers["bert.encoder.layer.0.attention.self.query"].A.MustSize())
			assert.Equal(t, []int64{4, 32}, a.Layers["bert.encoder.layer.1.attention.self.query"].A.MustSize())
			assert.Equal(t, []int64{6, 32}, a.Layers["bert.encoder.layer.1.attention.self.value"].A.MustSize())
		}},
	{"exclude_modules list", map[string]any{"r": 4, "lora_alpha": 8, "target_modules": []string{"query", "value", "key"},
		"exclude_modules": []string{"layer.1.attention.self.key"}}, false,
		func(t *testing.T, a *peft.Adapter) { assert.Len(t, a.Layers, 5) }},
	{"exclude_modules regex", map[string]any{"r": 4, "lora_alpha": 8, "target_modules": []string{"query", "value"},
		"exclude_modules": `.*layer\.0\.attention\.self\.value`}, false,
		func(t *testing.T, a *peft.Adapter) { assert.Len(t, a.Layers, 3) }},
	{"bias all", map[string]any{"r": 4, "lora_alpha": 8, "target_modules": []string{"query", "value"}, "bias": "all"}, true, nil},
	{"bias lora_only", map[string]any{"r": 4, "lora_alpha": 8, "target_modules": []string{"query", "value"}, "bias": "lora_only"}, true, nil},
	{"lora_bias", map[string]any{"r": 4, "lora_alpha": 8, "target_modules": []string{"query", "value", "dense"}, "lora_bias": true}, true, nil},
	{"use_dora", map[string]any{"r": 4, "lora_alpha": 8, "target_modules": []string{"query", "value", "dense"}, "use_dora": true}, true,
		func(t *testing.T, a *peft.Adapter) {
			for _, l := range a.Layers {
				require.NotNil(t, l.Magnitude)
			}
		}},
	{"use_dora rslora rank_pattern", map[string]any{"r": 4, "lora_alpha": 8, "target_modules": []string{"query", "key"}, "use_dora": true,
		"use_rslora": true, "rank_pattern": map[string]any{"key": 2}}, false, nil},
}

func TestCurrentPEFTFeaturesBothWays(t *testing.T) {
	testutil.RefPython(t)
	base := filepath.Join(testutil.RepoRoot(t), "testdata", "tiny-bert-qa", "base")
	for _, tc := range currentPEFTCases {
		t.Run(tc.name, func(t *testing.T) {
			dir, trained := t.TempDir(), ""
			if tc.train {
				trained = t.TempDir()
			}
			ws, we, wms, wme, losses := peftMake(t, base, dir, tc.cfg, trained)
			m, err := bert.Load(base, bert.LoadOptions{})
			require.NoError(t, err)
			defer m.Drop()
			a, err := peft.Load(dir, m)
			require.NoError(t, err)
			if tc.check != nil {
				tc.check(t, a)
			}
			s, e := logits(t, m, batchOf(bertIDs, bertMask))
			d := diff2(s, e, ws, we)
			t.Logf("PEFT adapter in loraqa: max |Δ| %.2e", d)
			assert.Less(t, d, goldenTol, "PEFT -> loraqa logits")
			require.NoError(t, a.Merge())
			s, e = logits(t, m, batchOf(bertIDs, bertMask))
			d = diff2(s, e, wms, wme)
			t.Logf("merged: max |Δ| %.2e", d)
			assert.Less(t, d, goldenTol, "merged logits vs PEFT merge_and_unload")
			require.NoError(t, a.Unmerge())
			s, e = logits(t, m, batchOf(bertIDs, bertMask))
			assert.Less(t, diff2(s, e, ws, we), goldenTol, "unmerged again")

			back := t.TempDir()
			require.NoError(t, a.Save(back))
			req := map[string]any{"base": base, "adapter": back, "input_ids": bertIDs, "attention_mask": bertMask,
				"start_logits": rows(s, 8), "end_logits": rows(e, 8)}
			d, _ = testutil.PEFTCheck(t, req)
			t.Logf("loraqa's file in PEFT: max |Δ| %.2e", d)
			assert.Less(t, d, goldenTol, "loraqa -> PEFT logits")
			merged := t.TempDir()
			require.NoError(t, a.ExportMerged(merged, base))
			req["merged"] = merged
			d, _ = testutil.PEFTCheck(t, req)
			t.Logf("loraqa's merged export in transformers: max |Δ| %.2e", d)
			assert.Less(t, d, goldenTol, "merged export")

			if tc.cfg["bias"] != nil {
				// PEFT 0.6 named a wrapped layer's bias "<module>.bias": read too.
				old := t.TempDir()
				w, err := bert.ReadSafetensors(filepath.Join(dir, peft.WeightsFile))
				require.NoError(t, err)
				var ts0 []safetensors.Tensor
				renamed := 0
				for k, h := range w {
					if strings.HasSuffix(k, ".base_layer.bias") {
						k = strings.Replace(k, ".base_layer.bias", ".bias", 1)
						renamed++
					}
					ts0 = append(ts0, safetensors.Tensor{Name: k, DType: safetensors.F32, Shape: h.Shape, Data: safetensors.Float32sToBytes(h.Data)})
				}
				require.Positive(t, renamed)
				require.NoError(t, safetensors.Write(filepath.Join(old, peft.WeightsFile), ts0, nil))
				cb, _ := os.ReadFile(filepath.Join(dir, peft.ConfigFile))
				require.NoError(t, os.WriteFile(filepath.Join(old, peft.ConfigFile), cb, 0o644))
				m3, err := bert.Load(base, bert.LoadOptions{})
				require.NoError(t, err)
				a3, err := peft.Load(old, m3)
				require.NoError(t, err)
				s3, e3 := logits(t, m3, batchOf(bertIDs, bertMask))
				assert.Less(t, diff2(s3, e3, ws, we), goldenTol, "PEFT 0.6 bias names")
				a3.Drop()
				m3.Drop()
			}
			if tc.train {
				trainSteps(t, m, a, losses, trained)
			}
			a.Drop()
			// Drop restores the base (biases included).
			m2, err := bert.Load(base, bert.LoadOptions{})
			require.NoError(t, err)
			defer m2.Drop()
			s2, e2 := logits(t, m2, batchOf(bertIDs, bertMask))
			s, e = logits(t, m, batchOf(bertIDs, bertMask))
			assert.Less(t, diff2(s, e, rows64(s2, 8), rows64(e2, 8)), 1e-5, "after Drop the base model is back (up to the rounding of merge and unmerge)")
		})
	}
}

// trainSteps runs loraqa's AdamW (torch.optim.AdamW, HF's decay groups) for as
// many steps as PEFT did on the same batch, dropout off, and compares the
// losses and every trained tensor with PEFT's trained adapter.
func trainSteps(t *testing.T, m *bert.Model, a *peft.Adapter, want []float64, trainedDir string) {
	m.Config.Dropout, m.Config.AttentionDropout, m.Config.QADropout = 0, 0, 0
	var ids, mask []int64
	for i := range bertIDs {
		ids, mask = append(ids, bertIDs[i]...), append(mask, bertMask[i]...)
	}
	shape := []int64{2, 8}
	in := bert.Batch{InputIDs: torch.FromInt64(ids, shape, gotch.CPU), AttentionMask: torch.FromInt64(mask, shape, gotch.CPU),
		StartPositions: torch.FromInt64([]int64{4, 3}, []int64{2}, gotch.CPU), EndPositions: torch.FromInt64([]int64{6, 4}, []int64{2}, gotch.CPU)}
	defer in.Drop()
	opt := train.NewAdamW(a.Params(), train.AdamWConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01})
	defer opt.Drop()
	var got []float64
	for range want {
		out := m.Forward(in, true)
		got = append(got, float64(torch.ToFloat32(out.Loss)[0]))
		out.Loss.MustBackward()
		out.Drop()
		opt.Update(1e-2)
		train.ZeroGrad(a.Params())
	}
	require.Len(t, got, len(want))
	dl := 0.0
	for i := range want {
		dl = max(dl, abs(got[i]-want[i]))
	}
	t.Logf("training steps: losses %v vs PEFT %v, max |Δ| %.2e", got, want, dl)
	assert.Less(t, dl, 1e-5, "losses")
	w, err := bert.ReadSafetensors(filepath.Join(trainedDir, peft.WeightsFile))
	require.NoError(t, err)
	worst, worstKey := 0.0, ""
	for _, st := range a.State() {
		h, ok := w[st.Name]
		if !ok {
			continue // PEFT's extra copies are checked by Load; the keys below must be there
		}
		v := torch.ToFloat32(findParam(a, st.Name))
		for i := range v {
			if d := abs(float64(v[i] - h.Data[i])); d > worst && !noiseDominated(m, st.Name) {
				worst, worstKey = d, st.Name
			}
		}
	}
	t.Logf("trained tensors: max |Δ| %.2e (%s)", worst, worstKey)
	assert.Less(t, worst, 1e-4, "trained tensors vs PEFT after 3 steps (lr 1e-2)")
	// Every trained tensor is in PEFT's file under the same key.
	for _, st := range a.State() {
		_, ok := w[st.Name]
		assert.True(t, ok, "PEFT's trained adapter holds %s", st.Name)
	}
}

// noiseDominated: a bias that shifts every position's logit alike (the QA
// head's, and the last LayerNorm's, which feeds only the head) or every
// attention score of a query alike (the key projection's) has an analytically
// zero gradient, as each softmax sums to 1; its float32 noise, normalised by
// Adam, moves it by up to lr per step.
func noiseDominated(m *bert.Model, key string) bool {
	last := fmt.Sprintf("layer.%d.output.LayerNorm.bias", m.Config.Layers-1)
	if m.Config.ModelType == "distilbert" {
		last = fmt.Sprintf("layer.%d.output_layer_norm.bias", m.Config.Layers-1)
	}
	return strings.HasSuffix(key, "qa_outputs.bias") || strings.HasSuffix(key, last) ||
		strings.HasSuffix(key, ".attention.self.key.bias") || strings.HasSuffix(key, ".attention.k_lin.bias")
}

func rows64(v []float32, n int) [][]float64 {
	var out [][]float64
	for i := 0; i+n <= len(v); i += n {
		r := make([]float64, n)
		for j := range r {
			r[j] = float64(v[i+j])
		}
		out = append(out, r)
	}
	return out
}

func findParam(a *peft.Adapter, key string) *ts.Tensor {
	for _, p := range a.Params() {
		if p.Key == key {
			return p.Tensor
		}
	}
	return nil
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
