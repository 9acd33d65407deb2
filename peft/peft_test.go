package peft_test

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"

	"github.com/loraqa/loraqa/bert"
	"github.com/loraqa/loraqa/internal/testutil"
	"github.com/loraqa/loraqa/peft"
	"github.com/loraqa/loraqa/torch"
	"github.com/loraqa/loraqa/torch/safetensors"
	"github.com/loraqa/loraqa/verify"
)

func loadBase(t *testing.T) (*bert.Model, string) {
	fx := testutil.Fixture(t, "tiny-distilbert-qa")
	m, err := bert.Load(filepath.Join(fx, "base"), bert.LoadOptions{Device: gotch.CPU})
	require.NoError(t, err)
	return m, fx
}

func batchOf(ids, mask [][]int64) verify.Batch {
	return verify.Batch{InputIDs: ids, AttentionMask: mask}
}

func logits(t *testing.T, m *bert.Model, b verify.Batch) ([]float32, []float32) {
	var ids, mask []int64
	for i := range b.InputIDs {
		ids = append(ids, b.InputIDs[i]...)
		mask = append(mask, b.AttentionMask[i]...)
	}
	shape := []int64{int64(len(b.InputIDs)), int64(len(b.InputIDs[0]))}
	in := bert.Batch{InputIDs: torch.FromInt64(ids, shape, gotch.CPU), AttentionMask: torch.FromInt64(mask, shape, gotch.CPU)}
	defer in.InputIDs.MustDrop()
	defer in.AttentionMask.MustDrop()
	var out bert.Output
	torch.NoGrad(func() { out = m.Forward(in, false) })
	defer out.Drop()
	return torch.ToFloat32(out.StartLogits), torch.ToFloat32(out.EndLogits)
}

func maxDiff(got []float32, want [][]float64) float64 {
	d, i := 0.0, 0
	for _, r := range want {
		for _, w := range r {
			d = math.Max(d, math.Abs(float64(got[i])-w))
			i++
		}
	}
	return d
}

func TestAdapterLogitsMatchFixture(t *testing.T) {
	for _, sub := range []string{"adapter", "adapter_bin"} {
		t.Run(sub, func(t *testing.T) {
			m, fx := loadBase(t)
			defer m.Drop()
			exp, err := verify.ReadExpected(fx)
			require.NoError(t, err)
			a, err := peft.Load(filepath.Join(fx, sub), m)
			require.NoError(t, err)
			assert.Len(t, a.Layers, 4)
			for _, b := range exp.Batches {
				s, e := logits(t, m, b)
				assert.Less(t, maxDiff(s, b.BasePlusAdapter.Start), 1e-4, b.Name)
				assert.Less(t, maxDiff(e, b.BasePlusAdapter.End), 1e-4, b.Name)
			}
			require.NoError(t, a.Merge())
			for _, b := range exp.Batches {
				s, e := logits(t, m, b)
				assert.Less(t, maxDiff(s, b.Merged.Start), 1e-4, b.Name)
				assert.Less(t, maxDiff(e, b.Merged.End), 1e-4, b.Name)
			}
			require.NoError(t, a.Unmerge())
			a.Drop()
			for _, b := range exp.Batches {
				s, e := logits(t, m, b)
				assert.Less(t, maxDiff(s, b.Base.Start), 1e-4, "after Drop the base is back: %s", b.Name)
				assert.Less(t, maxDiff(e, b.Base.End), 1e-4, b.Name)
			}
		})
	}
}

func TestFreshAdapterLeavesModelUnchanged(t *testing.T) {
	m, fx := loadBase(t)
	defer m.Drop()
	exp, err := verify.ReadExpected(fx)
	require.NoError(t, err)
	cfg := peft.DefaultConfig()
	a, err := peft.Inject(m, cfg)
	require.NoError(t, err)
	defer a.Drop()
	for _, b := range exp.Batches {
		s, _ := logits(t, m, b)
		assert.Less(t, maxDiff(s, b.Base.Start), 1e-4)
	}
}

func TestTrainableReportDistilBERTBase(t *testing.T) {
	m, err := bert.New(bert.DefaultDistilBERTConfig(), gotch.CPU, gotch.Float)
	require.NoError(t, err)
	defer m.Drop()
	a, err := peft.Inject(m, peft.DefaultConfig())
	require.NoError(t, err)
	defer a.Drop()
	assert.Equal(t, "trainable params: 296,450 || all params: 66,660,868 || trainable%: 0.4447", a.TrainableReport())
}

func TestSaveLoadRoundTrip(t *testing.T) {
	m, _ := loadBase(t)
	defer m.Drop()
	cfg := peft.DefaultConfig()
	cfg.R, cfg.LoraAlpha, cfg.InitLoraWeights = 8, 16, "gaussian"
	a, err := peft.Inject(m, cfg)
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, a.Save(dir))
	before := a.State()
	a.Drop()

	var raw map[string]any
	b, err := os.ReadFile(filepath.Join(dir, peft.ConfigFile))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &raw))
	assert.Equal(t, "QUESTION_ANS", raw["task_type"])
	assert.Equal(t, "LORA", raw["peft_type"])
	assert.Equal(t, []any{"q_lin", "v_lin"}, raw["target_modules"])
	assert.Equal(t, "gaussian", raw["init_lora_weights"])

	a2, err := peft.Load(dir, m)
	require.NoError(t, err)
	defer a2.Drop()
	after := a2.State()
	require.Equal(t, len(before), len(after))
	for i := range before {
		assert.Equal(t, before[i].Name, after[i].Name)
		assert.Equal(t, before[i].Data, after[i].Data, before[i].Name)
	}
	assert.Equal(t, "base_model.model.distilbert.transformer.layer.0.attention.q_lin.lora_A.weight", after[0].Name)
}

func TestTargetsAndLayers(t *testing.T) {
	cases := []struct {
		cfg  func(*peft.Config)
		name string
		want bool
	}{
		{func(c *peft.Config) {}, "distilbert.transformer.layer.0.attention.q_lin", true},
		{func(c *peft.Config) {}, "distilbert.transformer.layer.0.attention.k_lin", false},
		{func(c *peft.Config) { c.TargetModules = []string{"lin1"} }, "distilbert.transformer.layer.1.ffn.lin1", true},
		{func(c *peft.Config) { c.TargetModules, c.TargetRegex = nil, `.*layer\.1\.attention\.(q|k)_lin` }, "distilbert.transformer.layer.1.attention.k_lin", true},
		{func(c *peft.Config) { c.TargetModules, c.TargetRegex = nil, `.*layer\.1\.attention\.(q|k)_lin` }, "distilbert.transformer.layer.0.attention.k_lin", false},
		{func(c *peft.Config) { c.LayersToTransform = []int{1} }, "distilbert.transformer.layer.0.attention.q_lin", false},
		{func(c *peft.Config) { c.LayersToTransform = []int{1} }, "distilbert.transformer.layer.1.attention.q_lin", true},
		{func(c *peft.Config) { c.TargetModules = []string{"query"} }, "bert.encoder.layer.3.attention.self.query", true},
	}
	for _, tc := range cases {
		c := peft.DefaultConfig()
		tc.cfg(&c)
		assert.Equal(t, tc.want, c.Targets(tc.name), tc.name)
	}
}

func TestBadAdapters(t *testing.T) {
	m, fx := loadBase(t)
	defer m.Drop()
	write := func(t *testing.T, cfg string) string {
		dir := t.TempDir()
		b, _ := os.ReadFile(filepath.Join(fx, "adapter", peft.WeightsFile))
		require.NoError(t, os.WriteFile(filepath.Join(dir, peft.WeightsFile), b, 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(dir, peft.ConfigFile), []byte(cfg), 0o644))
		return dir
	}
	cases := map[string]struct{ cfg, want string }{
		"rank mismatch":     {`{"peft_type":"LORA","task_type":"QUESTION_ANS","r":8,"lora_alpha":16,"target_modules":["q_lin","v_lin"]}`, "has shape [4 32], this base model needs [8 32]"},
		"missing tensors":   {`{"peft_type":"LORA","task_type":"QUESTION_ANS","r":4,"lora_alpha":8,"target_modules":["q_lin","v_lin","k_lin"]}`, "k_lin.lora_A.weight\" is missing"},
		"no target matches": {`{"peft_type":"LORA","task_type":"QUESTION_ANS","r":4,"lora_alpha":8,"target_modules":["query"]}`, "matched no module"},
		"wrong type":        {`{"peft_type":"LORA","r":"four"}`, "adapter_config.json"},
		"bad bias":          {`{"peft_type":"LORA","r":4,"lora_alpha":8,"target_modules":["q_lin"],"bias":"some"}`, "bias \"some\""},
		"not lora":          {`{"peft_type":"PREFIX_TUNING"}`, "only LORA"},
	}
	t.Run("NaN weights", func(t *testing.T) {
		dir := t.TempDir()
		w, err := bert.ReadSafetensors(filepath.Join(fx, "adapter", peft.WeightsFile))
		require.NoError(t, err)
		var tensors []safetensors.Tensor
		for name, h := range w {
			if strings.HasSuffix(name, "layer.1.attention.v_lin.lora_B.weight") {
				h.Data[3] = float32(math.NaN())
			}
			tensors = append(tensors, safetensors.Tensor{Name: name, DType: safetensors.F32, Shape: h.Shape, Data: safetensors.Float32sToBytes(h.Data)})
		}
		require.NoError(t, safetensors.Write(filepath.Join(dir, peft.WeightsFile), tensors, nil))
		b, _ := os.ReadFile(filepath.Join(fx, "adapter", peft.ConfigFile))
		require.NoError(t, os.WriteFile(filepath.Join(dir, peft.ConfigFile), b, 0o644))
		_, err = peft.Load(dir, m)
		require.Error(t, err)
		assert.Contains(t, err.Error(), `layer.1.attention.v_lin.lora_B.weight" holds NaN or Inf`)
	})
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := peft.Load(write(t, tc.cfg), m)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestTwoAdaptersShareOneBase(t *testing.T) {
	m, fx := loadBase(t)
	defer m.Drop()
	exp, err := verify.ReadExpected(fx)
	require.NoError(t, err)
	b := exp.Batches[0]
	a1, err := peft.Load(filepath.Join(fx, "adapter"), m)
	require.NoError(t, err)
	defer a1.Drop()
	require.NoError(t, a1.Detach())
	s, _ := logits(t, m, b)
	assert.Less(t, maxDiff(s, b.Base.Start), 1e-4, "detached: the base alone")
	cfg := peft.DefaultConfig()
	a2, err := peft.Inject(m, cfg) // a fresh adapter: unchanged logits except its head copy
	require.NoError(t, err)
	defer a2.Drop()
	require.Error(t, a1.Attach(), "a2 holds the modules")
	require.NoError(t, a2.Detach())
	require.NoError(t, a1.Attach())
	s, _ = logits(t, m, b)
	assert.Less(t, maxDiff(s, b.BasePlusAdapter.Start), 1e-4, "a1 active again")
}
