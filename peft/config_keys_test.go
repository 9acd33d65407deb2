package peft_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/loraqa/loraqa/bert"
	"github.com/loraqa/loraqa/peft"
	"github.com/loraqa/loraqa/torch"
)

// Keys that change the math and are not implemented are refused with the key
// named, in the error OpenDir returns with the file's path.
func TestConfigRefusesUnsupportedKeys(t *testing.T) {
	base := `"peft_type":"LORA","r":4,"lora_alpha":8,"target_modules":["q_lin"]`
	cases := map[string]string{
		`"layer_replication":[[0,1],[0,2]]`:          "layer_replication",
		`"trainable_token_indices":[1,2]`:            "trainable_token_indices",
		`"init_lora_weights":"pissa"`:                "init_lora_weights \"pissa\"",
		`"init_lora_weights":"loftq"`:                "init_lora_weights \"loftq\"",
		`"init_lora_weights":"olora"`:                "init_lora_weights",
		`"target_parameters":["x.weight"]`:           "target_parameters",
		`"alora_invocation_tokens":[5]`:              "alora_invocation_tokens",
		`"use_qalora":true`:                          "use_qalora",
		`"megatron_config":{"a":1}`:                  "megatron_config",
		`"some_future_key":"on"`:                     "some_future_key",
		`"use_dora":true,"lora_bias":true`:           "lora_bias",
		`"rank_pattern":{"q_lin":0}`:                 "rank_pattern",
		`"rank_pattern":{"q_lin":2.5}`:               "rank_pattern",
		`"alpha_pattern":{"(":4}`:                    "alpha_pattern",
		`"exclude_modules":"("`:                      "exclude_modules",
		`"fan_in_fan_out":true`:                      "fan_in_fan_out",
		`"layers_pattern":"layer"`:                   "layers_pattern needs layers_to_transform",
		`"alpha_pattern":{"q_lin":"x"}`:              "alpha_pattern",
		`"velora_config":{"rho":1}`:                  "velora_config",
		`"use_bdlora":{"target_modules_bd_a":["q"]}`: "use_bdlora",
	}
	for extra, want := range cases {
		t.Run(want, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, peft.ConfigFile)
			require.NoError(t, os.WriteFile(path, []byte("{"+base+","+extra+"}"), 0o644))
			_, err := peft.OpenDir(dir)
			require.Error(t, err)
			assert.Contains(t, err.Error(), want)
			assert.Contains(t, err.Error(), path)
		})
	}
}

// What current PEFT writes by default (every key, most of them off) is read;
// keys that do not change the math are accepted whatever their value.
func TestConfigAcceptsPEFT021File(t *testing.T) {
	b := []byte(`{"alora_invocation_tokens": null, "alpha_pattern": {}, "arrow_config": null, "auto_mapping": null,
	"base_model_name_or_path": "b", "bias": "none", "corda_config": null, "ensure_weight_tying": false, "eva_config": null,
	"exclude_modules": null, "fan_in_fan_out": false, "inference_mode": true, "init_lora_weights": true, "kasa_config": null,
	"layer_replication": null, "layers_pattern": null, "layers_to_transform": null, "loftq_config": {}, "lora_alpha": 8,
	"lora_bias": false, "lora_dropout": 0.0, "lora_ga_config": null, "megatron_config": null, "megatron_core": "megatron.core",
	"modules_to_save": ["qa_outputs"], "monteclora_config": null, "peft_type": "LORA", "peft_version": "0.21.2",
	"qalora_group_size": 16, "r": 4, "rank_pattern": {}, "revision": null, "target_modules": ["query", "value"],
	"target_parameters": null, "task_type": "QUESTION_ANS", "trainable_token_indices": null, "use_bdlora": null,
	"use_dora": false, "use_qalora": false, "use_rslora": false, "velora_config": null,
	"runtime_config": {"ephemeral_gpu_offload": false}}`)
	var c peft.Config
	require.NoError(t, json.Unmarshal(b, &c))
	require.NoError(t, c.Validate())
	assert.Equal(t, 4, c.R)
	assert.Equal(t, []string{"query", "value"}, c.TargetModules)
}

// A key missing from adapter_config.json means PEFT's default: r 8,
// lora_alpha 8, lora_dropout 0, bias none, no task type, the model type's
// default targets.
func TestConfigMissingKeysTakePEFTDefaults(t *testing.T) {
	var c peft.Config
	require.NoError(t, json.Unmarshal([]byte(`{"peft_type":"LORA"}`), &c))
	assert.Equal(t, 8, c.R)
	assert.Equal(t, 8.0, c.LoraAlpha)
	assert.Equal(t, 0.0, c.LoraDropout)
	assert.Equal(t, "none", c.Bias)
	assert.Equal(t, "", c.TaskType)
	assert.Equal(t, 1.0, c.Scaling())
	m, err := bert.New(bert.TinyDistilBERTConfig(), gotch.CPU, gotch.Float)
	require.NoError(t, err)
	defer m.Drop()
	a, err := peft.Inject(m, c)
	require.NoError(t, err)
	defer a.Drop()
	assert.Len(t, a.Layers, 2*int(m.Config.Layers), "q_lin and v_lin of every layer")
	assert.Empty(t, a.Saved, "no task type: no head copy")
}

// rank_pattern and alpha_pattern: PEFT's get_pattern_key, the first pattern in
// file order that matches a dotted suffix; the order survives a write.
func TestPatternsHandComputed(t *testing.T) {
	var c peft.Config
	require.NoError(t, json.Unmarshal([]byte(`{"r":4,"lora_alpha":8,"target_modules":["q_lin","v_lin"],
		"rank_pattern":{"layer.1.attention.q_lin":2,"q_lin":6},"alpha_pattern":{"v_lin":32,"layer\\.0\\.attention\\.v_lin":1}}`), &c))
	q0, q1, v0 := "distilbert.transformer.layer.0.attention.q_lin", "distilbert.transformer.layer.1.attention.q_lin", "distilbert.transformer.layer.0.attention.v_lin"
	assert.Equal(t, 6, c.RankFor(q0))
	assert.Equal(t, 2, c.RankFor(q1))
	assert.Equal(t, 4, c.RankFor(v0))
	assert.Equal(t, 32.0, c.AlphaFor(v0), "the first matching pattern wins")
	assert.Equal(t, 8.0/6, c.ScalingFor(q0))
	assert.Equal(t, 8.0, c.AlphaFor("x.q_lin_extra"), "a pattern must match up to the end")
	out, err := json.Marshal(c)
	require.NoError(t, err)
	var back peft.Config
	require.NoError(t, json.Unmarshal(out, &back))
	assert.Equal(t, c.RankPattern, back.RankPattern)
	assert.Equal(t, c.AlphaPattern, back.AlphaPattern)
}

func TestExcludeModules(t *testing.T) {
	c := peft.DefaultConfig()
	c.TargetModules = []string{"q_lin", "k_lin"}
	c.ExcludeModules = []string{"layer.1.attention.k_lin"}
	assert.True(t, c.Targets("distilbert.transformer.layer.0.attention.k_lin"))
	assert.False(t, c.Targets("distilbert.transformer.layer.1.attention.k_lin"))
	c.ExcludeModules, c.ExcludeRegex = nil, `.*\.0\..*`
	assert.False(t, c.Targets("distilbert.transformer.layer.0.attention.q_lin"))
	assert.True(t, c.Targets("distilbert.transformer.layer.1.attention.q_lin"))
}

// use_dora or lora_bias or bias in the config with plain weights (or the other
// way round) is an error that names the key.
func TestConfigWeightsMismatchNamesKey(t *testing.T) {
	m, err := bert.New(bert.TinyDistilBERTConfig(), gotch.CPU, gotch.Float)
	require.NoError(t, err)
	defer m.Drop()
	plain := peft.DefaultConfig()
	a, err := peft.Inject(m, plain)
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, a.Save(dir))
	a.Drop()
	for _, key := range []string{"use_dora", "lora_bias"} {
		t.Run(key, func(t *testing.T) {
			var raw map[string]any
			b, _ := os.ReadFile(filepath.Join(dir, peft.ConfigFile))
			require.NoError(t, json.Unmarshal(b, &raw))
			raw[key] = true
			b, _ = json.Marshal(raw)
			d2 := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(d2, peft.ConfigFile), b, 0o644))
			w, _ := os.ReadFile(filepath.Join(dir, peft.WeightsFile))
			require.NoError(t, os.WriteFile(filepath.Join(d2, peft.WeightsFile), w, 0o644))
			_, err := peft.Load(d2, m)
			require.Error(t, err)
			assert.Contains(t, err.Error(), key)
		})
	}
	// A DoRA file read with use_dora off: the magnitude vectors are named.
	dc := peft.DefaultConfig()
	dc.UseDoRA = true
	a, err = peft.Inject(m, dc)
	require.NoError(t, err)
	require.NoError(t, a.Save(dir))
	a.Drop()
	var raw map[string]any
	b, _ := os.ReadFile(filepath.Join(dir, peft.ConfigFile))
	require.NoError(t, json.Unmarshal(b, &raw))
	raw["use_dora"] = false
	b, _ = json.Marshal(raw)
	require.NoError(t, os.WriteFile(filepath.Join(dir, peft.ConfigFile), b, 0o644))
	_, err = peft.Load(dir, m)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "use_dora")
}

// bias "all" trains every bias (LayerNorm too), saves them under current
// PEFT's names, and Drop (the former SIGSEGV) restores the base biases.
func TestBiasAllInjectSaveDrop(t *testing.T) {
	m, err := bert.New(bert.TinyDistilBERTConfig(), gotch.CPU, gotch.Float)
	require.NoError(t, err)
	defer m.Drop()
	before := torch.ToFloat32(m.Param("distilbert.transformer.layer.0.sa_layer_norm.bias"))
	for _, mode := range []string{"all", "lora_only"} {
		c := peft.DefaultConfig()
		c.Bias = mode
		a, err := peft.Inject(m, c)
		require.NoError(t, err)
		keys := map[string]bool{}
		for _, p := range a.Params() {
			keys[p.Key] = true
		}
		assert.True(t, keys["base_model.model.distilbert.transformer.layer.0.attention.q_lin.base_layer.bias"], mode)
		assert.False(t, keys["base_model.model.distilbert.transformer.layer.0.attention.q_lin.bias"], mode)
		assert.Equal(t, mode == "all", keys["base_model.model.distilbert.transformer.layer.0.sa_layer_norm.bias"], mode)
		assert.Equal(t, mode == "all", keys["base_model.model.distilbert.transformer.layer.0.attention.k_lin.bias"], mode)
		if mode == "all" {
			torch.NoGrad(func() { m.Param("distilbert.transformer.layer.0.sa_layer_norm.bias").MustAddScalar_(ts.FloatScalar(1)) })
		}
		dir := t.TempDir()
		require.NoError(t, a.Save(dir))
		a.Drop()
		assert.Equal(t, before, torch.ToFloat32(m.Param("distilbert.transformer.layer.0.sa_layer_norm.bias")), "restored")
		a2, err := peft.Load(dir, m)
		require.NoError(t, err)
		a2.Drop()
	}
}
