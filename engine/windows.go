package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"

	"github.com/loraqa/loraqa/data"
	"github.com/loraqa/loraqa/internal/atomicfile"
)

// WindowsFile is the file beside an adapter that records the windows it
// was trained with (`loraqa train` writes it).
const WindowsFile = "loraqa_windows.json"

// TrainedWindows are the windows an adapter was trained with.
type TrainedWindows struct {
	MaxSeqLength int `json:"max_seq_length" yaml:"max_seq_length"`
	DocStride    int `json:"doc_stride" yaml:"doc_stride"`
}

// WriteTrainedWindows records w in dir's WindowsFile.
func WriteTrainedWindows(dir string, w TrainedWindows) error {
	b, err := json.MarshalIndent(w, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(dir, WindowsFile)
	if err := atomicfile.Write(path, append(b, '\n')); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// ReadTrainedWindows reads the windows the adapter in dir was trained
// with: its WindowsFile, else the data section of the loraqa_config.yaml
// that older versions of `loraqa train` saved. ok is false when neither
// exists (an adapter made by PEFT, say).
func ReadTrainedWindows(dir string) (w TrainedWindows, ok bool, err error) {
	path := filepath.Join(dir, WindowsFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &w); err != nil {
			return w, false, fmt.Errorf("%s: %w", path, err)
		}
		if w.MaxSeqLength < 4 || w.DocStride < 0 || w.DocStride >= w.MaxSeqLength {
			return w, false, fmt.Errorf("%s: max_seq_length %d and doc_stride %d are not windows", path, w.MaxSeqLength, w.DocStride)
		}
		return w, true, nil
	case !errors.Is(err, fs.ErrNotExist):
		return w, false, fmt.Errorf("reading %s: %w", path, err)
	}
	path = filepath.Join(dir, "loraqa_config.yaml")
	b, err = os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return w, false, nil
	}
	if err != nil {
		return w, false, fmt.Errorf("reading %s: %w", path, err)
	}
	var cfg struct {
		Data TrainedWindows `yaml:"data"`
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		return w, false, fmt.Errorf("%s: %w", path, err)
	}
	w = TrainedWindows{MaxSeqLength: cfg.Data.MaxSeqLength, DocStride: cfg.Data.DocStride}
	if w.MaxSeqLength < 4 || w.DocStride < 0 || w.DocStride >= w.MaxSeqLength {
		return w, false, nil // no data section (or not a usable one): as if absent
	}
	return w, true, nil
}

// pipelineMaxSeq is the window of Hugging Face's question-answering
// pipeline when nothing else says: 384 tokens, capped by the model.
const pipelineMaxSeq = 384

// Windows resolves the windows queries are cut into.
//
// MaxSeqLength: the user's when given (> 0); else the adapter's training
// windows (ReadTrainedWindows); else Hugging Face's QA pipeline rule, 384.
// Either default is capped by the model's limit: the smaller of
// modelPositions (max_position_embeddings) and tokenizerMax
// (model_max_length; 0 = none).
//
// DocStride: the user's when given (> 0); else the adapter's, when the
// window is the one it was trained with; else the pipeline rule
// min(max_seq_length / 2, 128).
//
// A window the user asked for that the model cannot take is not capped: the
// engine refuses it when loading (bert.Config.CheckInputs), as is a stride
// that leaves no room (data.Featurize).
func Windows(user data.FeatureOptions, trained *TrainedWindows, modelPositions int64, tokenizerMax int) data.FeatureOptions {
	out := user
	limit := int(modelPositions)
	if tokenizerMax > 0 && (limit <= 0 || tokenizerMax < limit) {
		limit = tokenizerMax
	}
	capped := func(n int) int {
		if limit > 0 && n > limit {
			return limit
		}
		return n
	}
	switch {
	case user.MaxSeqLength > 0:
	case trained != nil:
		out.MaxSeqLength = capped(trained.MaxSeqLength)
	default:
		out.MaxSeqLength = capped(pipelineMaxSeq)
	}
	if user.DocStride <= 0 {
		if trained != nil && trained.MaxSeqLength == out.MaxSeqLength {
			out.DocStride = trained.DocStride
		} else {
			out.DocStride = min(out.MaxSeqLength/2, 128)
		}
	}
	return out
}

// ResolveWindows is Windows with the training windows read from
// adapterDir ("" = no adapter: a QA model alone).
func ResolveWindows(user data.FeatureOptions, adapterDir string, modelPositions int64, tokenizerMax int) (data.FeatureOptions, error) {
	var trained *TrainedWindows
	if adapterDir != "" {
		w, ok, err := ReadTrainedWindows(adapterDir)
		if err != nil {
			return user, err
		}
		if ok {
			trained = &w
		}
	}
	return Windows(user, trained, modelPositions, tokenizerMax), nil
}
