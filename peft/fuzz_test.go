package peft_test

import (
	"encoding/json"
	"testing"

	"github.com/loraqa/loraqa/peft"
)

// FuzzAdapterConfig: any adapter_config.json content either parses into a config
// that validates or is rejected with an error; it never panics, and a valid
// config survives a write/read round trip.
func FuzzAdapterConfig(f *testing.F) {
	for _, s := range []string{
		`{"peft_type":"LORA","task_type":"QUESTION_ANS","r":16,"lora_alpha":32,"target_modules":["q_lin","v_lin"]}`,
		`{"peft_type":"LORA","r":4,"lora_alpha":8,"target_modules":".*layer\\.1\\..*q_lin","layers_to_transform":1}`,
		`{"r":"four"}`, `[]`, `{"init_lora_weights":"gaussian","r":2,"lora_alpha":2,"target_modules":["x"]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var c peft.Config
		if err := json.Unmarshal(b, &c); err != nil {
			return
		}
		if c.Validate() != nil {
			return
		}
		_ = c.Targets("distilbert.transformer.layer.1.attention.q_lin")
		out, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("marshal a valid config: %v", err)
		}
		var back peft.Config
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("read back %s: %v", out, err)
		}
		if back.R != c.R || back.LoraAlpha != c.LoraAlpha || back.TargetRegex != c.TargetRegex || len(back.TargetModules) != len(c.TargetModules) {
			t.Fatalf("round trip changed %+v into %+v", c, back)
		}
	})
}
