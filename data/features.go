package data

import (
	"fmt"
	"math"
)

// Mode chooses how a long context becomes features.
type Mode string

// Featurization modes.
const (
	// ModeWindows makes every window of the context (HF run_qa with
	// return_overflowing_tokens); training may keep only some of the windows
	// that do not hold the answer.
	ModeWindows Mode = "windows"
	// ModeTruncate keeps only the first window, as the reference does:
	// answers beyond it are lost, and the report counts them.
	ModeTruncate Mode = "truncate"
)

// NoOffset marks tokens outside the context (question and special tokens) in
// Feature.Offsets; they are JSON null.
var NoOffset = [2]int{-1, -1}

// Feature is one window of one example, as the model sees it, unpadded:
// [CLS] question [SEP] context window [SEP] (BERT), or
// <s> question </s></s> context window </s> (RoBERTa).
type Feature struct {
	ExampleID     string
	ExampleIndex  int // index of the example in the slice given to Featurize
	Window        int // 0, 1, … among all windows of the example
	InputIDs      []int64
	AttentionMask []int64
	// TokenTypeIDs are 0 for [CLS], the question and the first [SEP], 1 for
	// the context and the last [SEP] (BERT uses them; DistilBERT does not).
	// For RoBERTa they are all 0: its tokenizer gives none and its model
	// (type_vocab_size 1) then uses zeros.
	TokenTypeIDs []int64
	// Offsets are [start, end) code-point offsets into the context for
	// context tokens, NoOffset for the others.
	Offsets [][2]int
	// StartPosition and EndPosition are the token indices (inclusive) of the
	// answer, both 0 ([CLS]) when the answer is not wholly in this window.
	StartPosition int
	EndPosition   int
}

// HasAnswer reports whether the feature is labelled with an answer span.
func (f *Feature) HasAnswer() bool { return f.StartPosition > 0 }

// FeatureOptions configures Featurize.
type FeatureOptions struct {
	MaxSeqLength int  // tokens per window, special tokens included (384)
	DocStride    int  // tokens of overlap between consecutive windows (128)
	Mode         Mode // windows (default) or truncate
	// NegativeFraction is the fraction of windows without the answer kept in
	// windows mode: 1 keeps all (evaluation), less thins them for training.
	// Which ones are kept depends only on Seed, the example id and the window.
	NegativeFraction float64
	Seed             uint64
}

// DefaultFeatureOptions are the defaults of HF run_qa: 384 tokens, stride 128,
// every window kept.
func DefaultFeatureOptions() FeatureOptions {
	return FeatureOptions{MaxSeqLength: 384, DocStride: 128, Mode: ModeWindows, NegativeFraction: 1, Seed: DefaultSeed}
}

// validate checks the options for a tokenizer that puts specials special
// tokens around a question and a context (3 for BERT, 4 for RoBERTa).
func (o *FeatureOptions) validate(specials int) error {
	switch {
	case o.Mode != ModeWindows && o.Mode != ModeTruncate:
		return fmt.Errorf("features: mode %q is not %q or %q", o.Mode, ModeWindows, ModeTruncate)
	case o.MaxSeqLength < specials+1:
		return fmt.Errorf("features: max_seq_length %d is too small (at least %d: %d special tokens and a context token)", o.MaxSeqLength, specials+1, specials)
	case o.DocStride < 0:
		return fmt.Errorf("features: doc_stride %d is negative", o.DocStride)
	case o.DocStride >= o.MaxSeqLength-specials:
		return fmt.Errorf("features: doc_stride %d leaves no room: it must be smaller than the window left for the context (max_seq_length %d minus the question and %d special tokens)",
			o.DocStride, o.MaxSeqLength, specials)
	case math.IsNaN(o.NegativeFraction) || o.NegativeFraction < 0 || o.NegativeFraction > 1:
		return fmt.Errorf("features: negative fraction %v is not in [0, 1]", o.NegativeFraction)
	}
	return nil
}

// FeatureReport counts what Featurize made of one set of examples (one split).
type FeatureReport struct {
	Mode         Mode `json:"mode"`
	MaxSeqLength int  `json:"max_seq_length"`
	// CappedFrom is the requested max_seq_length when the tokenizer's
	// model_max_length was smaller and capped it (0 otherwise).
	CappedFrom int `json:"capped_from,omitempty"`
	DocStride  int `json:"doc_stride"`
	Examples   int `json:"examples"`
	Windows    int `json:"windows"`  // windows made
	Features   int `json:"features"` // windows kept
	// AnswerWindows are kept windows labelled with the answer;
	// NegativeWindows kept windows without it; DroppedWindows windows
	// without it that were not kept (NegativeFraction < 1).
	AnswerWindows   int `json:"answer_windows"`
	NegativeWindows int `json:"negative_windows"`
	DroppedWindows  int `json:"dropped_windows"`
	// AnswersInWindow counts examples whose answer lies wholly inside at
	// least one window; AnswersLost those whose answer no window holds (lost
	// to truncation); NoAnswer examples without a gold answer.
	AnswersInWindow int      `json:"answers_in_window"`
	AnswersLost     int      `json:"answers_lost"`
	NoAnswer        int      `json:"no_answer"`
	LostIDs         []string `json:"lost_ids,omitempty"`
}

// Featurize tokenizes each question with its context and cuts the context
// into windows labelled with the first gold answer, as HF run_qa's
// prepare_train_features does (see labelWindow for the one place it differs).
// A question without an answer (SQuAD 2.0) has every window labelled (0, 0),
// the [CLS] token, like a window that does not hold the answer; such windows
// are negatives for NegativeFraction too.
func Featurize(tok *Tokenizer, examples []Example, opts FeatureOptions) ([]Feature, *FeatureReport, error) {
	rep := &FeatureReport{Mode: opts.Mode, MaxSeqLength: opts.MaxSeqLength, DocStride: opts.DocStride, Examples: len(examples)}
	if ml := tok.ModelMaxLength(); ml > 0 && opts.MaxSeqLength > ml {
		rep.CappedFrom, opts.MaxSeqLength = opts.MaxSeqLength, ml
		rep.MaxSeqLength = ml
	}
	if err := opts.validate(tok.PairSpecialTokens()); err != nil {
		if rep.CappedFrom > 0 {
			err = fmt.Errorf("%w (max_seq_length %d was capped to the tokenizer's model_max_length %d)", err, rep.CappedFrom, rep.MaxSeqLength)
		}
		return nil, rep, err
	}
	contexts := map[string]*Encoding{}
	var feats []Feature
	for i := range examples {
		ex := &examples[i]
		q, err := tok.Encode(ex.Question)
		if err != nil {
			return nil, rep, fmt.Errorf("features: example %q: %w", ex.ID, err)
		}
		c, ok := contexts[ex.Context]
		if !ok {
			if c, err = tok.Encode(ex.Context); err != nil {
				return nil, rep, fmt.Errorf("features: example %q: %w", ex.ID, err)
			}
			contexts[ex.Context] = c
		}
		windows, err := windowRanges(len(c.IDs), opts.MaxSeqLength-len(q.IDs)-tok.PairSpecialTokens(), opts.DocStride)
		if err != nil {
			return nil, rep, fmt.Errorf("features: example %q (question of %d tokens): %w", ex.ID, len(q.IDs), err)
		}
		if opts.Mode == ModeTruncate {
			windows = windows[:1]
		}
		ans, hasAnswer, err := firstAnswer(ex)
		if err != nil {
			return nil, rep, fmt.Errorf("features: %w", err)
		}
		found := false
		for w, win := range windows {
			f := makeFeature(tok, ex.ID, i, w, q, c, win)
			if hasAnswer {
				f.StartPosition, f.EndPosition = labelWindow(f.Offsets, contextStart(tok, q), len(f.Offsets)-2, ans[0], ans[1])
			}
			rep.Windows++
			if f.HasAnswer() {
				found = true
				rep.AnswerWindows++
			} else if opts.Mode == ModeWindows && opts.NegativeFraction < 1 &&
				hashUnit(opts.Seed, ex.ID, w) >= opts.NegativeFraction {
				rep.DroppedWindows++
				continue
			} else {
				rep.NegativeWindows++
			}
			feats = append(feats, f)
		}
		switch {
		case !hasAnswer:
			rep.NoAnswer++
		case found:
			rep.AnswersInWindow++
		default:
			rep.AnswersLost++
			rep.LostIDs = append(rep.LostIDs, ex.ID)
		}
	}
	rep.Features = len(feats)
	return feats, rep, nil
}

// windowRanges cuts n context tokens into windows of room tokens, each
// starting room-stride tokens after the previous one, until a window reaches
// the end (the windows of HF tokenizers' overflowing truncation). A context
// that fits makes one window; an empty one makes one empty window.
func windowRanges(n, room, stride int) ([][2]int, error) {
	if room <= 0 {
		return nil, fmt.Errorf("the question leaves no room for the context (%d tokens left)", room)
	}
	if n <= room {
		return [][2]int{{0, n}}, nil
	}
	if stride >= room {
		return nil, fmt.Errorf("doc_stride %d leaves no room: it must be smaller than the %d tokens left for the context", stride, room)
	}
	var out [][2]int
	for start := 0; ; start += room - stride {
		stop := min(start+room, n)
		out = append(out, [2]int{start, stop})
		if stop == n {
			return out, nil
		}
	}
}

// contextStart is the index of a feature's first context token: after
// [CLS] q [SEP], or <s> q </s></s>.
func contextStart(tok *Tokenizer, q *Encoding) int { return len(q.IDs) + tok.PairSpecialTokens() - 1 }

func makeFeature(tok *Tokenizer, id string, exIndex, window int, q, c *Encoding, win [2]int) Feature {
	cs := contextStart(tok, q)
	n := cs + (win[1] - win[0]) + 1
	f := Feature{
		ExampleID: id, ExampleIndex: exIndex, Window: window,
		InputIDs:      make([]int64, 0, n),
		AttentionMask: make([]int64, n),
		TokenTypeIDs:  make([]int64, n),
		Offsets:       make([][2]int, 0, n),
	}
	f.InputIDs = append(f.InputIDs, tok.CLS())
	f.InputIDs = append(f.InputIDs, q.IDs...)
	for len(f.InputIDs) < cs {
		f.InputIDs = append(f.InputIDs, tok.SEP())
	}
	f.InputIDs = append(f.InputIDs, c.IDs[win[0]:win[1]]...)
	f.InputIDs = append(f.InputIDs, tok.SEP())
	for range cs {
		f.Offsets = append(f.Offsets, NoOffset)
	}
	f.Offsets = append(f.Offsets, c.Offsets[win[0]:win[1]]...)
	f.Offsets = append(f.Offsets, NoOffset)
	for k := range f.AttentionMask {
		f.AttentionMask[k] = 1
		if k >= cs && tok.TokenTypes() {
			f.TokenTypeIDs[k] = 1
		}
	}
	return f
}

// firstAnswer is the code-point span [start, end) of the first gold answer.
func firstAnswer(ex *Example) ([2]int, bool, error) {
	spans, err := ex.answerSpans()
	if err != nil || len(spans) == 0 {
		return [2]int{}, false, err
	}
	return spans[0], true, nil
}

// labelWindow returns the token indices of the answer [sc, ec) in a window
// whose context tokens are first..last, or (0, 0) when the answer is not
// wholly inside the window. As in HF run_qa, the start token is the last one
// starting at or before sc and the end token the first one ending at or
// after ec. Unlike run_qa, the search never leaves the context (run_qa can
// walk onto [SEP] and padding when the answer starts in the window's last
// token), and where several tokens share one character (an NFD expansion
// such as a Hangul syllable) an inverted span is widened to cover them all.
func labelWindow(offsets [][2]int, first, last, sc, ec int) (int, int) {
	if last < first || offsets[first][0] > sc || offsets[last][1] < ec {
		return 0, 0
	}
	s := first
	for s <= last && offsets[s][0] <= sc {
		s++
	}
	s--
	e := last
	for e >= first && offsets[e][1] >= ec {
		e--
	}
	e++
	if e < s {
		for s > first && offsets[s-1][0] == offsets[s][0] {
			s--
		}
		for e < last && offsets[e+1][1] == offsets[e][1] {
			e++
		}
		if e < s {
			s, e = e, s
		}
	}
	return s, e
}
