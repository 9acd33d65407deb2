// Package peft implements LoRA as HF PEFT defines it: a LoRA linear wraps its
// base layer and computes base(x) + lora_B(lora_A(dropout(x))) * scaling, with
// PEFT's names, its adapter files (adapter_config.json + adapter_model.safetensors)
// both ways, modules_to_save (the QA head trains in full), merge and unmerge.
package peft

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/loraqa/loraqa/internal/orderedjson"
)

// Config is PEFT's LoraConfig as written to adapter_config.json. The keys
// that change the math are implemented (see README, "PEFT adapters") or
// refused when read; missing keys take PEFT's defaults (PEFTDefaults).
type Config struct {
	PeftType          string   `json:"peft_type"`
	TaskType          string   `json:"task_type"`
	R                 int      `json:"r"`
	LoraAlpha         float64  `json:"lora_alpha"`
	LoraDropout       float64  `json:"lora_dropout"`
	TargetModules     []string `json:"-"` // a list of names, or
	TargetRegex       string   `json:"-"` // a regex (target_modules given as a string)
	ExcludeModules    []string `json:"-"` // exclude_modules as a list of names, or
	ExcludeRegex      string   `json:"-"` // as a regex
	Bias              string   `json:"bias"`
	ModulesToSave     []string `json:"modules_to_save"`
	LayersToTransform []int    `json:"layers_to_transform"`
	LayersPattern     []string `json:"-"`
	FanInFanOut       bool     `json:"fan_in_fan_out"`
	InitLoraWeights   string   `json:"-"` // "true", "false" or "gaussian"
	UseRSLoRA         bool     `json:"-"`
	// RankPattern and AlphaPattern override r and lora_alpha for the modules
	// whose name a pattern matches (PEFT's get_pattern_key: the first pattern,
	// in file order, that matches a dotted suffix of the name).
	RankPattern  []Pattern `json:"-"`
	AlphaPattern []Pattern `json:"-"`
	// LoraBias gives lora_B a bias (PEFT's lora_bias).
	LoraBias bool `json:"lora_bias"`
	// UseDoRA makes every layer a DoRA layer (weight-decomposed LoRA).
	UseDoRA       bool    `json:"use_dora"`
	BaseModel     string  `json:"base_model_name_or_path"`
	Revision      *string `json:"revision"`
	InferenceMode bool    `json:"inference_mode"`
}

// Pattern is one entry of rank_pattern or alpha_pattern.
type Pattern struct {
	Key   string
	Value float64
}

// PEFTDefaults is LoraConfig() with no arguments: what a key missing from
// adapter_config.json means (r 8, lora_alpha 8, dropout 0, bias none;
// target_modules none: PEFT's default targets for the model type).
func PEFTDefaults() Config {
	return Config{PeftType: "LORA", R: 8, LoraAlpha: 8, Bias: "none", InitLoraWeights: "true"}
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
	if modelType == "bert" || modelType == "roberta" {
		return []string{"query", "value"}
	}
	return []string{"q_lin", "v_lin"}
}

// Scaling is lora_alpha / r, or lora_alpha / sqrt(r) with rsLoRA.
func (c Config) Scaling() float64 {
	return scaling(c.LoraAlpha, c.R, c.UseRSLoRA)
}

func scaling(alpha float64, r int, rs bool) float64 {
	if rs {
		return alpha / math.Sqrt(float64(r))
	}
	return alpha / float64(r)
}

// RankFor is the rank of the named module: rank_pattern's value, else r.
func (c Config) RankFor(module string) int {
	if v, ok := matchPattern(c.RankPattern, module); ok {
		return int(v)
	}
	return c.R
}

// AlphaFor is the lora_alpha of the named module: alpha_pattern's value, else lora_alpha.
func (c Config) AlphaFor(module string) float64 {
	if v, ok := matchPattern(c.AlphaPattern, module); ok {
		return v
	}
	return c.LoraAlpha
}

// ScalingFor is the named module's scaling, with its own rank and alpha.
func (c Config) ScalingFor(module string) float64 {
	return scaling(c.AlphaFor(module), c.RankFor(module), c.UseRSLoRA)
}

// matchPattern is PEFT's get_pattern_key: the first key k (in file order) with
// re.match(rf"(.*\.)?({k})$", name).
func matchPattern(ps []Pattern, name string) (float64, bool) {
	for _, p := range ps {
		re, err := compiled(`^(?:.*\.)?(?:` + p.Key + `)$`)
		if err == nil && re.MatchString(name) {
			return p.Value, true
		}
	}
	return 0, false
}

// Validate checks the fields a LoRA adapter needs. An empty target list is
// allowed: Inject then takes PEFT's default targets for the model type.
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
	case c.FanInFanOut:
		return fmt.Errorf("fan_in_fan_out is for Conv1D (GPT-2) layers; DistilBERT and BERT use Linear")
	case c.UseDoRA && c.LoraBias:
		return fmt.Errorf("use_dora with lora_bias: PEFT does not support lora_bias for DoRA")
	}
	switch c.InitLoraWeights {
	case "", "true", "false", "gaussian":
	default:
		return fmt.Errorf("init_lora_weights %q: want true, false or gaussian", c.InitLoraWeights)
	}
	for _, re := range []struct{ key, re string }{{"target_modules", c.TargetRegex}, {"exclude_modules", c.ExcludeRegex}} {
		if re.re != "" {
			if _, err := regexp.Compile(re.re); err != nil {
				return fmt.Errorf("%s regex: %w", re.key, err)
			}
		}
	}
	for _, pp := range []struct {
		key string
		ps  []Pattern
	}{{"rank_pattern", c.RankPattern}, {"alpha_pattern", c.AlphaPattern}} {
		for _, p := range pp.ps {
			if _, err := regexp.Compile(`^(?:.*\.)?(?:` + p.Key + `)$`); err != nil {
				return fmt.Errorf("%s key %q: %w", pp.key, p.Key, err)
			}
			if p.Value <= 0 || (pp.key == "rank_pattern" && p.Value != math.Trunc(p.Value)) {
				return fmt.Errorf("%s[%q] = %g: want a positive %s", pp.key, p.Key, p.Value, map[bool]string{true: "integer", false: "number"}[pp.key == "rank_pattern"])
			}
		}
	}
	if len(c.LayersPattern) > 0 && len(c.LayersToTransform) == 0 {
		return fmt.Errorf("layers_pattern needs layers_to_transform")
	}
	return nil
}

// Excludes reports whether exclude_modules names the module (a regex must
// match the whole name; a list entry must equal the name or its dotted suffix).
func (c Config) Excludes(name string) bool {
	if c.ExcludeRegex != "" {
		re, err := compiled("^(?:" + c.ExcludeRegex + ")$")
		return err == nil && re.MatchString(name)
	}
	for _, e := range c.ExcludeModules {
		if name == e || strings.HasSuffix(name, "."+e) {
			return true
		}
	}
	return false
}

// Targets reports whether PEFT would wrap the module with this name: not
// excluded, and a regex must match the whole name or a list entry must equal
// the name (then layers_to_transform does not apply) or its dotted suffix;
// layers_to_transform restricts the suffix matches to the given layer indexes.
func (c Config) Targets(name string) bool {
	if c.Excludes(name) {
		return false
	}
	if c.TargetRegex != "" {
		re, err := compiled("^(?:" + c.TargetRegex + ")$")
		return err == nil && re.MatchString(name)
	}
	hit := false
	for _, t := range c.TargetModules {
		if name == t {
			return true
		}
		if strings.HasSuffix(name, "."+t) {
			hit = true
		}
	}
	if !hit || len(c.LayersToTransform) == 0 { // none given: every layer
		return hit
	}
	idx, ok := layerIndex(name, c.LayersPattern)
	if !ok {
		return false
	}
	return slices.Contains(c.LayersToTransform, idx)
}

// defaultLayerRE finds the layer index of a module name when layers_pattern
// is not given (PEFT's default: the first number after two dotted names).
var defaultLayerRE = regexp.MustCompile(`^.*?\.[^.]*\.(\d+)\.`)

// regexes caches the patterns an adapter config's keys make: Targets and
// the pattern lookups run for every module of the model.
var regexes sync.Map // string -> *regexp.Regexp

// compiled is regexp.Compile(expr), compiled once per expression.
func compiled(expr string) (*regexp.Regexp, error) {
	if re, ok := regexes.Load(expr); ok {
		return re.(*regexp.Regexp), nil
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, err
	}
	regexes.Store(expr, re)
	return re, nil
}

func layerIndex(name string, patterns []string) (int, bool) {
	var m []string
	if len(patterns) == 0 {
		m = defaultLayerRE.FindStringSubmatch(name)
	}
	for _, p := range patterns {
		re, err := compiled(`^(?:|.*?\.)` + p + `\.(\d+)\.`)
		if err != nil {
			continue
		}
		if m = re.FindStringSubmatch(name); m != nil {
			break
		}
	}
	if m == nil {
		return 0, false
	}
	i, err := strconv.Atoi(m[1])
	return i, err == nil
}

// MarshalJSON writes adapter_config.json as current PEFT (0.21) reads it
// without a warning.
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
	switch {
	case c.TargetRegex != "":
		m["target_modules"] = c.TargetRegex
	case len(targets) == 0:
		m["target_modules"] = nil
	default:
		m["target_modules"] = targets
	}
	switch {
	case c.ExcludeRegex != "":
		m["exclude_modules"] = c.ExcludeRegex
	case len(c.ExcludeModules) > 0:
		m["exclude_modules"] = c.ExcludeModules
	default:
		m["exclude_modules"] = nil
	}
	if len(c.ModulesToSave) == 0 {
		m["modules_to_save"] = nil
	}
	if len(c.LayersToTransform) == 0 { // PEFT reads [] as "no layer"
		m["layers_to_transform"] = nil
	}
	switch len(c.LayersPattern) {
	case 0:
		m["layers_pattern"] = nil
	case 1:
		m["layers_pattern"] = c.LayersPattern[0]
	default:
		m["layers_pattern"] = c.LayersPattern
	}
	switch c.InitLoraWeights {
	case "gaussian":
		m["init_lora_weights"] = "gaussian"
	case "false":
		m["init_lora_weights"] = false
	default:
		m["init_lora_weights"] = true
	}
	m["use_rslora"] = c.UseRSLoRA
	m["alpha_pattern"] = orderedPatterns(c.AlphaPattern)
	m["rank_pattern"] = orderedPatterns(c.RankPattern)
	m["auto_mapping"] = nil
	return json.MarshalIndent(m, "", "  ")
}

// orderedPatterns keeps the file order of a pattern map (it decides which
// pattern wins) when written.
type orderedPatterns []Pattern

func (o orderedPatterns) MarshalJSON() ([]byte, error) {
	return orderedjson.Marshal(len(o), func(i int) (string, any) { return o[i].Key, o[i].Value })
}

// readPatterns reads a JSON object of numbers in file order.
func readPatterns(raw json.RawMessage, key string) ([]Pattern, error) {
	if isNull(raw) {
		return nil, nil
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("%s: want an object of module patterns to numbers", key)
	}
	var out []Pattern
	for dec.More() {
		tk, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		k, _ := tk.(string)
		var n json.Number
		if err := dec.Decode(&n); err != nil {
			return nil, fmt.Errorf("%s[%q]: want a number", key, k)
		}
		f, err := n.Float64()
		if err != nil {
			return nil, fmt.Errorf("%s[%q]: %w", key, k, err)
		}
		out = append(out, Pattern{Key: k, Value: f})
	}
	return out, nil
}

func isNull(raw json.RawMessage) bool {
	s := strings.TrimSpace(string(raw))
	return s == "" || s == "null"
}

// oneOrList reads raw, a T or a list of them (PEFT takes a single value
// where it means a list of one), into *dst; false when it is neither.
func oneOrList[T any](raw json.RawMessage, dst *[]T) bool {
	var one T
	if json.Unmarshal(raw, &one) == nil {
		*dst = []T{one}
		return true
	}
	return json.Unmarshal(raw, dst) == nil
}

// isOff is a value that leaves a key's feature off: null, false, "", {}, [] or 0.
func isOff(raw json.RawMessage) bool {
	switch strings.Join(strings.Fields(string(raw)), "") {
	case "", "null", "false", `""`, "{}", "[]", "0":
		return true
	}
	return false
}

// Keys of LoraConfig (PEFT 0.21) by what loraqa does with them.
var (
	// implementedKeys are read into Config.
	implementedKeys = map[string]bool{
		"peft_type": true, "task_type": true, "r": true, "lora_alpha": true, "lora_dropout": true,
		"target_modules": true, "exclude_modules": true, "bias": true, "modules_to_save": true,
		"layers_to_transform": true, "layers_pattern": true, "fan_in_fan_out": true, "init_lora_weights": true,
		"use_rslora": true, "rank_pattern": true, "alpha_pattern": true, "lora_bias": true, "use_dora": true,
		"base_model_name_or_path": true, "revision": true, "inference_mode": true,
	}
	// neutralKeys do not change the adapter's math (bookkeeping, or settings
	// of an initialisation that is refused through init_lora_weights).
	neutralKeys = map[string]bool{
		"auto_mapping": true, "peft_version": true, "megatron_core": true, "runtime_config": true,
		"loftq_config": true, "eva_config": true, "corda_config": true, "lora_ga_config": true,
		"qalora_group_size": true, "ensure_weight_tying": true,
	}
	// refusedKeys change the math and are not implemented: refused unless off.
	refusedKeys = map[string]string{
		"layer_replication":       "layer replication (duplicated base layers)",
		"trainable_token_indices": "trainable token embeddings",
		"megatron_config":         "Megatron-parallel layers",
		"target_parameters":       "LoRA on nn.Parameter targets",
		"alora_invocation_tokens": "activated LoRA (aLoRA)",
		"use_qalora":              "QALoRA",
		"velora_config":           "VeLoRA",
		"monteclora_config":       "MonteCLoRA",
		"use_bdlora":              "block-diagonal LoRA",
		"arrow_config":            "Arrow routing",
		"kasa_config":             "KaSA",
	}
)

// UnmarshalJSON reads adapter_config.json as PEFT writes it (any version from
// 0.4 on): target_modules as a list or a regex string, layers_to_transform as an
// int or a list, init_lora_weights as a bool or "gaussian". A missing key takes
// PEFT's default; a key that changes the math and is not implemented, or an
// unknown key with a value that is not off, is refused by name.
func (c *Config) UnmarshalJSON(b []byte) error {
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	for _, k := range slices.Sorted(maps.Keys(all)) {
		v := all[k]
		if implementedKeys[k] || neutralKeys[k] {
			continue
		}
		if what, ok := refusedKeys[k]; ok {
			if !isOff(v) {
				return fmt.Errorf("%s %s: %s is not supported by loraqa", k, compact(v), what)
			}
			continue
		}
		if !isOff(v) {
			return fmt.Errorf("%s %s: key unknown to loraqa (written by a PEFT newer than 0.21?); refused, as it may change the adapter's math", k, compact(v))
		}
	}
	type plain Config
	var aux struct {
		plain
		TargetModules     json.RawMessage `json:"target_modules"`
		ExcludeModules    json.RawMessage `json:"exclude_modules"`
		LayersToTransform json.RawMessage `json:"layers_to_transform"`
		InitLoraWeights   json.RawMessage `json:"init_lora_weights"`
		UseRSLoRA         *bool           `json:"use_rslora"`
		LayersPattern     json.RawMessage `json:"layers_pattern"`
		ModulesToSave     json.RawMessage `json:"modules_to_save"`
		Bias              *string         `json:"bias"`
		TaskType          *string         `json:"task_type"`
		PeftType          *string         `json:"peft_type"`
		LoraBias          *bool           `json:"lora_bias"`
		UseDoRA           *bool           `json:"use_dora"`
		FanInFanOut       *bool           `json:"fan_in_fan_out"`
		Revision          *string         `json:"revision"`
		BaseModel         *string         `json:"base_model_name_or_path"`
		RankPattern       json.RawMessage `json:"rank_pattern"`
		AlphaPattern      json.RawMessage `json:"alpha_pattern"`
	}
	aux.plain = plain(PEFTDefaults())
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	*c = Config(aux.plain)
	d := PEFTDefaults()
	c.TaskType, c.PeftType, c.Bias, c.BaseModel = deref(aux.TaskType, ""), deref(aux.PeftType, d.PeftType), deref(aux.Bias, d.Bias), deref(aux.BaseModel, "")
	c.UseRSLoRA, c.LoraBias, c.UseDoRA, c.FanInFanOut = deref(aux.UseRSLoRA, false), deref(aux.LoraBias, false), deref(aux.UseDoRA, false), deref(aux.FanInFanOut, false)
	c.Revision = aux.Revision
	var err error
	if c.TargetModules, c.TargetRegex, err = namesOrRegex(aux.TargetModules, "target_modules"); err != nil {
		return err
	}
	if c.ExcludeModules, c.ExcludeRegex, err = namesOrRegex(aux.ExcludeModules, "exclude_modules"); err != nil {
		return err
	}
	if !isNull(aux.LayersPattern) && !oneOrList(aux.LayersPattern, &c.LayersPattern) {
		return fmt.Errorf("layers_pattern: want a string or a list of strings")
	}
	if !isNull(aux.ModulesToSave) {
		if err := json.Unmarshal(aux.ModulesToSave, &c.ModulesToSave); err != nil {
			return fmt.Errorf("modules_to_save: want a list of names or null")
		}
	}
	if !isNull(aux.LayersToTransform) && !oneOrList(aux.LayersToTransform, &c.LayersToTransform) {
		return fmt.Errorf("layers_to_transform: want an int or a list of ints")
	}
	if c.RankPattern, err = readPatterns(aux.RankPattern, "rank_pattern"); err != nil {
		return err
	}
	if c.AlphaPattern, err = readPatterns(aux.AlphaPattern, "alpha_pattern"); err != nil {
		return err
	}
	c.InitLoraWeights = "true"
	switch s := strings.TrimSpace(string(aux.InitLoraWeights)); s {
	case "", "null", "true":
	case "false":
		c.InitLoraWeights = "false"
	case `"gaussian"`:
		c.InitLoraWeights = "gaussian"
	default:
		return fmt.Errorf("init_lora_weights %s: not supported by loraqa (want true, false or \"gaussian\"; PiSSA, OLoRA, LoftQ, EVA, CorDA, LoRA-GA and orthogonal initialisation are not implemented)", s)
	}
	return nil
}

func deref[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

func compact(raw json.RawMessage) string {
	s := strings.Join(strings.Fields(string(raw)), "")
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}

// namesOrRegex reads a key that is a list of module names or a regex string.
func namesOrRegex(raw json.RawMessage, key string) ([]string, string, error) {
	if isNull(raw) {
		return nil, "", nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err == nil {
		return list, "", nil
	}
	var re string
	if err := json.Unmarshal(raw, &re); err != nil {
		return nil, "", fmt.Errorf("%s: want a list of names or a regex string", key)
	}
	if _, err := regexp.Compile("^(?:" + re + ")$"); err != nil {
		return nil, "", fmt.Errorf("%s regex %q: %w", key, re, err)
	}
	return nil, re, nil
}
