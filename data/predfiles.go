package data

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"slices"
)

// Names of the files WritePredictionFiles writes, those of HF's
// postprocess_qa_predictions with an output_dir.
const (
	PredictionsFile      = "predictions.json"
	NBestPredictionsFile = "nbest_predictions.json"
	NullOddsFile         = "null_odds.json"
)

// nbestEntry is one candidate in nbest_predictions.json, with HF's keys in
// HF's order.
type nbestEntry struct {
	StartLogit  float32 `json:"start_logit"`
	EndLogit    float32 `json:"end_logit"`
	Text        string  `json:"text"`
	Probability float64 `json:"probability"`
}

// WritePredictionFiles writes preds into dir in the formats of HF's
// postprocess_qa_predictions, which the official SQuAD scripts read:
// predictions.json (id → answer text, "" for no answer), nbest_predictions.json
// (id → the n best as {start_logit, end_logit, text, probability}; not
// written when no prediction has n-best candidates, as the engine's answers
// for `loraqa eval` have none) and, when
// the predictions have NullOdds (Version2WithNegative), null_odds.json
// (id → null odds: evaluate-v2.0.py's --na-prob-file; only the predictions
// that have them). Each file is written
// atomically, its keys in the order of preds, as HF writes them (the order in
// which evaluate-v2.0.py breaks ties between equal null odds).
func WritePredictionFiles(dir string, preds []Prediction) error {
	err := writeOrderedJSON(filepath.Join(dir, PredictionsFile), preds, func(p *Prediction) (any, error) { return p.Text, nil })
	if err != nil {
		return err
	}
	if slices.ContainsFunc(preds, func(p Prediction) bool { return len(p.NBest) > 0 }) {
		err = writeOrderedJSON(filepath.Join(dir, NBestPredictionsFile), preds, func(p *Prediction) (any, error) {
			list := make([]nbestEntry, len(p.NBest))
			for i, c := range p.NBest {
				list[i] = nbestEntry{StartLogit: c.StartLogit, EndLogit: c.EndLogit, Text: c.Text, Probability: c.Score}
			}
			return list, nil
		})
		if err != nil {
			return err
		}
	}
	var withOdds []Prediction
	for _, p := range preds {
		if p.NullOdds != nil {
			withOdds = append(withOdds, p)
		}
	}
	if withOdds == nil {
		return nil
	}
	return writeOrderedJSON(filepath.Join(dir, NullOddsFile), withOdds, func(p *Prediction) (any, error) { return *p.NullOdds, nil })
}

// writeOrderedJSON writes {id: value(p), ...} for preds in their order,
// indented, atomically; an error names the file and the prediction.
func writeOrderedJSON(path string, preds []Prediction, value func(*Prediction) (any, error)) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	b.WriteString("{")
	for i := range preds {
		p := &preds[i]
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString("\n    ")
		v, err := value(p)
		if err == nil {
			err = enc.Encode(p.ID)
		}
		if err == nil {
			b.Truncate(b.Len() - 1) // the encoder's newline
			b.WriteString(": ")
			err = enc.Encode(v)
		}
		if err != nil {
			return fmt.Errorf("write %s: prediction %d (%q): %w", path, i, p.ID, err)
		}
		b.Truncate(b.Len() - 1)
	}
	if len(preds) > 0 {
		b.WriteString("\n")
	}
	b.WriteString("}\n")
	return writeFileAtomic(path, func(w io.Writer) error { _, err := w.Write(b.Bytes()); return err })
}
