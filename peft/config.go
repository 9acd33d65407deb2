// Package peft implements LoRA as HF PEFT defines it: a LoRA linear wraps its
// base layer and computes base(x) + lora_B(lora_A(dropout(x))) * scaling, with
// PEFT's names, its adapter files (adapter_config.json + adapter_model.safetensors)
// both ways, modules_to_save (the QA head trains in full), merge and unmerge.
package peft

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Config is PEFT's LoraConfig as written to adapter_config.json.
type Config struct {
	PeftType          string   `json:"peft_type"`
	TaskType          string   `json:"task_type"`
	R                 int      `json:"r"`
	LoraAlpha         float64  `json:"lora_alpha"`
	LoraDropout       float64  `json:"lora_dropout"`
	TargetModules     []string `json:"-"` // a list of names, or
	TargetRegex       string   `json:"-"` // a regex (target_modules given as a string)
	Bias              string   `json:"bias"`
	ModulesToSave     []string `json:"modules_to_save"`
	LayersToTransform []int    `json:"layers_to_transform"`
	LayersPattern     string   `json:"layers_pattern,omitempty"`
	FanInFanOut       bool     `json:"fan_in_fan_out"`
	InitLoraWeights   string   `json:"-"` // "true", "false" or "gaussian"
	UseRSLoRA         bool     `json:"-"`
	BaseModel         string   `json:"base_model_name_or_path"`
	Revision          *string  `json:"revision"`
	InferenceMode     bool     `json:"inference_mode"`
}

// DefaultConfig is the reference recipe: r 16, alpha 32, dropout 0.05 on
// q_lin and v_lin, bias none, task QUESTION_ANS.
func DefaultConfig() Config {
	return Config{PeftType: "LORA", TaskType: "QUESTION_ANS", R: 16, LoraAlpha: 32, LoraDropout: 0.05,
		TargetModules: []string{"q_lin", "v_lin"}, Bias: "none", InitLoraWeights: "true"}
}

// DefaultTargets is PEFT's default LoRA target list for a model type
// (TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING).
func DefaultTargets(modelType string) []string {
	if modelType == "bert" {
		return []string{"query", "value"}
	}
	return []string{"q_lin", "v_lin"}
}

// Scaling is lora_alpha / r, or lora_alpha / sqrt(r) with rsLoRA.
func (c Config) Scaling() float64 {
	if c.UseRSLoRA {
		return c.LoraAlpha / math.Sqrt(float64(c.R))
	}
	return c.LoraAlpha / float64(c.R)
}

// Validate checks the fields a LoRA adapter needs.
func (c Config) Validate() error {
	switch {
	case c.PeftType != "" && c.PeftType != "LORA":
		return fmt.Errorf("peft_type %q: only LORA adapters are supported", c.PeftType)
	case c.R <= 0:
		return fmt.Errorf("r %d must be positive", c.R)
	case c.LoraAlpha <= 0:
		return fmt.Errorf("lora_alpha %g must be positive", c.LoraAlpha)
	case c.LoraDropout < 0 || c.LoraDropout >= 1:
		return fmt.Errorf("lora_dropout %g must be in [0, 1)", c.LoraDropout)
	case c.Bias != "none" && c.Bias != "all" && c.Bias != "lora_only":
		return fmt.Errorf("bias %q: want none, all or lora_only", c.Bias)
	case len(c.TargetModules) == 0 && c.TargetRegex == "":
		return fmt.Errorf("target_modules is empty")
	case c.FanInFanOut:
		return fmt.Errorf("fan_in_fan_out is for Conv1D (GPT-2) layers; DistilBERT and BERT use Linear")
	}
	switch c.InitLoraWeights {
	case "", "true", "false", "gaussian":
	default:
		return fmt.Errorf("init_lora_weights %q: want true, false or gaussian", c.InitLoraWeights)
	}
	if c.TargetRegex != "" {
		if _, err := regexp.Compile(c.TargetRegex); err != nil {
			return fmt.Errorf("target_modules regex: %w", err)
		}
	}
	return nil
}

// Targets reports whether PEFT would wrap the module with this name: a regex
// must match the whole name; a list entry must equal the name or its dotted
// suffix. layers_to_transform restricts to the given layer indexes.
func (c Config) Targets(name string) bool {
	hit := false
	if c.TargetRegex != "" {
		re := regexp.MustCompile("^(?:" + c.TargetRegex + ")$")
		hit = re.MatchString(name)
	} else {
		for _, t := range c.TargetModules {
			if name == t || strings.HasSuffix(name, "."+t) {
				hit = true
				break
			}
		}
	}
	if !hit || len(c.LayersToTransform) == 0 { // none given: every layer
		return hit
	}
	idx, ok := layerIndex(name, c.LayersPattern)
	if !ok {
		return false
	}
	for _, l := range c.LayersToTransform {
		if l == idx {
			return true
		}
	}
	return false
}

func layerIndex(name, pattern string) (int, bool) {
	p := `.*\.[^.]*\.(\d+)\.`
	if pattern != "" {
		p = `.*\.` + regexp.QuoteMeta(pattern) + `\.(\d+)\.`
	}
	m := regexp.MustCompile(p).FindStringSubmatch(name)
	if m == nil {
		return 0, false
	}
	i, err := strconv.Atoi(m[1])
	return i, err == nil
}

// MarshalJSON writes PEFT 0.6's adapter_config.json fields.
func (c Config) MarshalJSON() ([]byte, error) {
	type plain Config
	m := map[string]any{}
	b, err := json.Marshal(plain(c))
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	targets := append([]string(nil), c.TargetModules...)
	sort.Strings(targets)
	if c.TargetRegex != "" {
		m["target_modules"] = c.TargetRegex
	} else {
		m["target_modules"] = targets
	}
	if len(c.ModulesToSave) == 0 {
		m["modules_to_save"] = nil
	}
	if len(c.LayersToTransform) == 0 { // PEFT reads [] as "no layer"
		m["layers_to_transform"] = nil
	}
	if c.LayersPattern == "" {
		m["layers_pattern"] = nil
	}
	switch c.InitLoraWeights {
	case "gaussian":
		m["init_lora_weights"] = "gaussian"
	case "false":
		m["init_lora_weights"] = false
	default:
		m["init_lora_weights"] = true
	}
	if c.UseRSLoRA { // PEFT >= 0.7 only; 0.6 would reject the unknown field
		m["use_rslora"] = true
	}
	m["alpha_pattern"] = map[string]any{}
	m["rank_pattern"] = map[string]any{}
	m["auto_mapping"] = nil
	return json.MarshalIndent(m, "", "  ")
}

// UnmarshalJSON reads adapter_config.json as PEFT writes it (any version from
// 0.4 on): target_modules as a list or a regex string, layers_to_transform as an
// int or a list, init_lora_weights as a bool or "gaussian".
func (c *Config) UnmarshalJSON(b []byte) error {
	type plain Config
	var aux struct {
		plain
		TargetModules     json.RawMessage `json:"target_modules"`
		LayersToTransform json.RawMessage `json:"layers_to_transform"`
		InitLoraWeights   json.RawMessage `json:"init_lora_weights"`
		UseRSLoRA         bool            `json:"use_rslora"`
		LayersPattern     any             `json:"layers_pattern"`
		ModulesToSave     json.RawMessage `json:"modules_to_save"`
	}
	aux.plain = plain(DefaultConfig())
	aux.plain.TargetModules = nil
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	*c = Config(aux.plain)
	c.UseRSLoRA = aux.UseRSLoRA
	if s, ok := aux.LayersPattern.(string); ok {
		c.LayersPattern = s
	}
	if len(aux.TargetModules) > 0 && string(aux.TargetModules) != "null" {
		var list []string
		if err := json.Unmarshal(aux.TargetModules, &list); err != nil {
			var re string
			if err2 := json.Unmarshal(aux.TargetModules, &re); err2 != nil {
				return fmt.Errorf("target_modules: want a list of names or a regex string")
			}
			c.TargetRegex = re
		} else {
			c.TargetModules = list
		}
	}
	if len(aux.ModulesToSave) > 0 && string(aux.ModulesToSave) != "null" {
		if err := json.Unmarshal(aux.ModulesToSave, &c.ModulesToSave); err != nil {
			return fmt.Errorf("modules_to_save: want a list of names or null")
		}
	}
	if len(aux.LayersToTransform) > 0 && string(aux.LayersToTransform) != "null" {
		var one int
		if err := json.Unmarshal(aux.LayersToTransform, &one); err == nil {
			c.LayersToTransform = []int{one}
		} else if err := json.Unmarshal(aux.LayersToTransform, &c.LayersToTransform); err != nil {
			return fmt.Errorf("layers_to_transform: want an int or a list of ints")
		}
	}
	c.InitLoraWeights = "true"
	switch s := strings.TrimSpace(string(aux.InitLoraWeights)); s {
	case "", "null", "true":
	case "false":
		c.InitLoraWeights = "false"
	case `"gaussian"`:
		c.InitLoraWeights = "gaussian"
	default:
		return fmt.Errorf("init_lora_weights %s: want true, false or \"gaussian\"", s)
	}
	return nil
}

// ReadConfig reads dir/adapter_config.json.
func ReadConfig(dir string) (Config, error) {
	path := filepath.Join(dir, "adapter_config.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("adapter config: %w", err)
	}
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}
