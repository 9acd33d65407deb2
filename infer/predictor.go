// Package infer answers questions with a QA model and an optional LoRA adapter:
// a context is cut into the same windows as in training, every window is run,
// and the best span over all windows is returned (HF's post-processing).
package infer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/sugarme/gotch"

	"github.com/loraqa/loraqa/bert"
	"github.com/loraqa/loraqa/data"
	"github.com/loraqa/loraqa/hub"
	"github.com/loraqa/loraqa/peft"
	"github.com/loraqa/loraqa/train"
)

// Options say what to load.
type Options struct {
	Model     string // base model dir or hub id; "" = the adapter's base_model_name_or_path
	Adapter   string // adapter dir; "" = the model alone (a QA model)
	Device    gotch.Device
	DType     gotch.DType // of the frozen base: gotch.Float (also the zero value), BFloat16 or Half
	Hub       hub.Options
	Merge     bool // fold the adapter into the weights (faster; one adapter only)
	Features  data.FeatureOptions
	Post      data.PostprocessOptions
	BatchSize int
	Logf      func(format string, a ...any)
}

// DefaultOptions: windows of 384 with stride 128, batch 32.
func DefaultOptions() Options {
	return Options{Device: gotch.CPU, Features: data.DefaultFeatureOptions(), Post: data.DefaultPostprocessOptions(), BatchSize: 32}
}

// Predictor holds a model, its adapter and tokenizer. Predict is safe for
// concurrent use: calls are serialised on the model.
type Predictor struct {
	Model     *bert.Model
	Adapter   *peft.Adapter
	Tokenizer *data.Tokenizer
	BaseDir   string
	Opt       Options
	mu        sync.Mutex
}

// Load resolves the base model, loads it, injects the adapter and the tokenizer
// (the adapter's tokenizer files when it has them, else the base's).
func Load(ctx context.Context, opt Options) (*Predictor, error) {
	ref := opt.Model
	if ref == "" {
		if opt.Adapter == "" {
			return nil, fmt.Errorf("give a model (--model) or an adapter (--adapter)")
		}
		cfg, err := peft.ReadConfig(opt.Adapter)
		if err != nil {
			return nil, err
		}
		if cfg.BaseModel == "" {
			return nil, fmt.Errorf("%s: base_model_name_or_path is empty; name the base model with --model", filepath.Join(opt.Adapter, peft.ConfigFile))
		}
		ref = cfg.BaseModel
	}
	dir, err := hub.Resolve(ctx, ref, opt.Hub)
	if err != nil {
		return nil, err
	}
	logf := opt.Logf
	if opt.Adapter != "" {
		logf = nil // the adapter brings its own QA head: no notice about the base's
	}
	m, err := bert.Load(dir, bert.LoadOptions{Device: opt.Device, DType: opt.DType, Logf: logf})
	if err != nil {
		return nil, err
	}
	p := &Predictor{Model: m, BaseDir: dir, Opt: opt}
	tokDir := dir
	if opt.Adapter != "" {
		a, err := peft.Load(opt.Adapter, m)
		if err != nil {
			m.Drop()
			return nil, err
		}
		p.Adapter = a
		if opt.Merge {
			if err := a.Merge(); err != nil {
				p.Close()
				return nil, err
			}
		}
		if hasTokenizer(opt.Adapter) {
			tokDir = opt.Adapter
		}
	}
	if p.Tokenizer, err = data.LoadTokenizer(tokDir); err != nil {
		p.Close()
		return nil, err
	}
	if err := m.Config.CheckInputs(opt.Features.MaxSeqLength, p.Tokenizer.VocabSize()); err != nil {
		p.Close()
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return p, nil
}

func hasTokenizer(dir string) bool {
	for _, f := range []string{"tokenizer.json", "vocab.txt"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return true
		}
	}
	return false
}

// Close frees the model and adapter.
func (p *Predictor) Close() {
	if p.Adapter != nil {
		p.Adapter.Drop()
		p.Adapter = nil
	}
	if p.Model != nil {
		p.Model.Drop()
		p.Model = nil
	}
}

// Query is one question over one context.
type Query struct {
	ID       string
	Question string
	Context  string
}

// Predict answers queries; each prediction carries up to Post.NBestSize
// candidates, best first, with character offsets into its context.
func (p *Predictor) Predict(ctx context.Context, qs []Query) ([]data.Prediction, error) {
	ex := make([]data.Example, len(qs))
	for i, q := range qs {
		id := q.ID
		if id == "" {
			id = fmt.Sprint(i)
		}
		ex[i] = data.Example{ID: id, Question: q.Question, Context: q.Context}
	}
	fo := p.Opt.Features
	fo.NegativeFraction = 1
	feats, _, err := data.Featurize(p.Tokenizer, ex, fo)
	if err != nil {
		return nil, err
	}
	if len(feats) == 0 {
		return nil, fmt.Errorf("no window could be made (empty question or context?)")
	}
	p.mu.Lock()
	starts, ends, _, err := train.Logits(ctx, p.Model, feats, p.Opt.BatchSize, false)
	p.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return data.Postprocess(ex, feats, starts, ends, p.Opt.Post)
}
