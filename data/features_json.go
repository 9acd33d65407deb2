package data

import (
	"encoding/json"
	"fmt"
	"io"
)

// featureJSON is the JSON form of a Feature: one object per line of
// `loraqa features` output, offsets null for tokens outside the context.
type featureJSON struct {
	ExampleID     string    `json:"example_id"`
	Window        int       `json:"window"`
	InputIDs      []int64   `json:"input_ids"`
	AttentionMask []int64   `json:"attention_mask"`
	TokenTypeIDs  []int64   `json:"token_type_ids"`
	Offsets       []*[2]int `json:"offsets"`
	StartPosition int       `json:"start_position"`
	EndPosition   int       `json:"end_position"`
}

// MarshalJSON writes the feature with the keys example_id, window,
// input_ids, attention_mask, token_type_ids, offsets (null outside the
// context), start_position and end_position.
func (f Feature) MarshalJSON() ([]byte, error) {
	j := featureJSON{
		ExampleID: f.ExampleID, Window: f.Window,
		InputIDs: f.InputIDs, AttentionMask: f.AttentionMask, TokenTypeIDs: f.TokenTypeIDs,
		Offsets:       make([]*[2]int, len(f.Offsets)),
		StartPosition: f.StartPosition, EndPosition: f.EndPosition,
	}
	for i := range f.Offsets {
		if f.Offsets[i] != NoOffset {
			j.Offsets[i] = &f.Offsets[i]
		}
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads the form MarshalJSON writes. ExampleIndex is not part
// of it and is left 0.
func (f *Feature) UnmarshalJSON(b []byte) error {
	var j featureJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	n := len(j.InputIDs)
	if len(j.AttentionMask) != n || len(j.Offsets) != n || (j.TokenTypeIDs != nil && len(j.TokenTypeIDs) != n) {
		return fmt.Errorf("feature %q window %d: input_ids, attention_mask, token_type_ids and offsets differ in length", j.ExampleID, j.Window)
	}
	*f = Feature{
		ExampleID: j.ExampleID, Window: j.Window,
		InputIDs: j.InputIDs, AttentionMask: j.AttentionMask, TokenTypeIDs: j.TokenTypeIDs,
		Offsets:       make([][2]int, n),
		StartPosition: j.StartPosition, EndPosition: j.EndPosition,
	}
	for i, o := range j.Offsets {
		f.Offsets[i] = NoOffset
		if o != nil {
			f.Offsets[i] = *o
		}
	}
	return nil
}

// EncodeFeaturesJSONL writes one JSON object per feature.
func EncodeFeaturesJSONL(w io.Writer, feats []Feature) error {
	enc := json.NewEncoder(w)
	for i := range feats {
		if err := enc.Encode(feats[i]); err != nil {
			return fmt.Errorf("feature %d: %w", i, err)
		}
	}
	return nil
}

// WriteFeaturesJSONL writes features to path as JSON lines, atomically.
func WriteFeaturesJSONL(path string, feats []Feature) error {
	return writeFileAtomic(path, func(w io.Writer) error { return EncodeFeaturesJSONL(w, feats) })
}
