// Package verify checks loraqa's model, LoRA and training step against a
// PyTorch-made fixture in the layout scripts/ref/make_fixtures.py writes: the logits
// of base, base + adapter and merged, and the AdamW training steps.
package verify

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// Logits are start and end logits, [batch][seq].
type Logits struct {
	Start [][]float64 `json:"start_logits"`
	End   [][]float64 `json:"end_logits"`
}

// Batch is one entry of expected.json's batches.
type Batch struct {
	Name            string    `json:"name"`
	InputIDs        [][]int64 `json:"input_ids"`
	AttentionMask   [][]int64 `json:"attention_mask"`
	TokenTypeIDs    [][]int64 `json:"token_type_ids"` // BERT fixtures only
	Base            *Logits   `json:"base"`
	BasePlusAdapter *Logits   `json:"base_plus_adapter"`
	Merged          *Logits   `json:"merged"`
}

// Expected is expected.json.
type Expected struct {
	Tolerance float64 `json:"tolerance_abs"`
	Batches   []Batch `json:"batches"`
}

// TrainStep is train_step.json.
type TrainStep struct {
	Hyper struct {
		LR          float64    `json:"lr"`
		Betas       [2]float64 `json:"betas"`
		Eps         float64    `json:"eps"`
		WeightDecay float64    `json:"weight_decay"`
		Steps       int        `json:"steps"`
	} `json:"hyperparameters"`
	Batch struct {
		InputIDs       [][]int64 `json:"input_ids"`
		AttentionMask  [][]int64 `json:"attention_mask"`
		TokenTypeIDs   [][]int64 `json:"token_type_ids"`
		StartPositions []int64   `json:"start_positions"`
		EndPositions   []int64   `json:"end_positions"`
	} `json:"batch"`
	Trainable map[string]struct {
		Shape       []int64 `json:"shape"`
		WeightDecay bool    `json:"weight_decay"`
	} `json:"trainable"`
	LossBefore     float64                    `json:"loss_before_step"`
	Losses         []float64                  `json:"losses"`
	LossAfter      float64                    `json:"loss_after_steps"`
	GradNorms      []float64                  `json:"grad_norms"`
	GradsStep1     map[string]json.RawMessage `json:"grads_step1"`
	ParamsAfter    map[string]json.RawMessage `json:"params_after"`
	Tolerance      map[string]float64         `json:"tolerance_abs"`
	NoiseDominated struct {
		Keys      []string `json:"keys"`
		Tolerance float64  `json:"tolerance_abs"`
	} `json:"noise_dominated"`
}

// ReadExpected reads dir/expected.json.
func ReadExpected(dir string) (*Expected, error) {
	var e Expected
	return &e, readJSON(filepath.Join(dir, "expected.json"), &e)
}

// ReadTrainStep reads dir/train_step.json.
func ReadTrainStep(dir string) (*TrainStep, error) {
	var s TrainStep
	return &s, readJSON(filepath.Join(dir, "train_step.json"), &s)
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// Flatten turns nested JSON number lists into a flat slice.
func Flatten(raw json.RawMessage) ([]float64, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	var out []float64
	var walk func(any) error
	walk = func(x any) error {
		switch t := x.(type) {
		case float64:
			out = append(out, t)
		case []any:
			for _, e := range t {
				if err := walk(e); err != nil {
					return err
				}
			}
		default:
			return fmt.Errorf("unexpected %T in a number list", x)
		}
		return nil
	}
	return out, walk(v)
}
