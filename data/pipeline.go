package data

import (
	"fmt"
	"math"
	"sort"
	"unicode/utf8"
)

// PipelineOptions configures PipelineAnswers, with the names of HF's
// question-answering pipeline.
type PipelineOptions struct {
	TopK            int // answers per example (the pipeline's top_k, 1)
	MaxAnswerLength int // longest span in tokens (max_answer_len, 15)
	// HandleImpossibleAnswer adds the null answer "" with the example's null
	// score (handle_impossible_answer).
	HandleImpossibleAnswer bool
}

// PipelineAnswer is one answer of PipelineAnswers. Score is a probability
// that can be compared across windows and examples: the product of the
// start and end token probabilities of the window it came from.
type PipelineAnswer struct {
	Text  string
	Start int // code points into the context; 0 for the null answer
	End   int
	Score float64
}

// PipelineAnswers scores the spans of each example as HF's question-answering
// pipeline does (transformers 4.x's QuestionAnsweringPipeline.postprocess with
// align_to_words=False): in each window, softmax of the start and of the end
// logits over the context tokens and [CLS]; a span's score is P(start)·P(end),
// for spans of at most MaxAnswerLength tokens inside the context; the
// TopK best spans of every window, those with the same text adding up their
// scores; with HandleImpossibleAnswer the null answer "" with the lowest
// P([CLS] start)·P([CLS] end) over the windows joins them; the TopK best are
// returned, best first. Unlike the pipeline, spans whose probability is 0 in
// float32 (the pipeline keeps them only when a window has fewer than TopK
// possible spans) are left out.
//
// Features are matched to examples by ExampleID; the logit rows may be
// longer than their features (padding). As the pipeline, it computes the
// probabilities in float32.
func PipelineAnswers(examples []Example, features []Feature, startLogits, endLogits [][]float32, opts PipelineOptions) ([][]PipelineAnswer, error) {
	if len(startLogits) != len(features) || len(endLogits) != len(features) {
		return nil, fmt.Errorf("pipeline answers: %d features but %d start and %d end logit rows", len(features), len(startLogits), len(endLogits))
	}
	if opts.TopK <= 0 || opts.MaxAnswerLength <= 0 {
		return nil, fmt.Errorf("pipeline answers: top_k %d and max_answer_len %d must be positive", opts.TopK, opts.MaxAnswerLength)
	}
	index := make(map[string]int, len(examples))
	for i, ex := range examples {
		index[ex.ID] = i
	}
	out := make([][]PipelineAnswer, len(examples))
	nulls := make([]float32, len(examples))
	for i := range nulls {
		nulls[i] = 1e6 // the pipeline's "large and positive" start
	}
	for i := range features {
		f := &features[i]
		e, ok := index[f.ExampleID]
		if !ok {
			return nil, fmt.Errorf("pipeline answers: feature %d belongs to example %q, which is not among the examples", i, f.ExampleID)
		}
		n := len(f.InputIDs)
		if len(f.Offsets) != n || len(startLogits[i]) < n || len(endLogits[i]) < n {
			return nil, fmt.Errorf("pipeline answers: feature %d has %d tokens, %d offsets, %d start and %d end logits", i, n, len(f.Offsets), len(startLogits[i]), len(endLogits[i]))
		}
		ctx := []rune(examples[e].Context)
		ps, pe := windowProbs(f, startLogits[i][:n]), windowProbs(f, endLogits[i][:n])
		if null := ps[0] * pe[0]; null < nulls[e] {
			nulls[e] = null
		}
		ps[0], pe[0] = 0, 0
		for _, sp := range topSpans(f, ps, pe, opts.TopK, opts.MaxAnswerLength) {
			a, b := f.Offsets[sp.s][0], f.Offsets[sp.e][1]
			if a < 0 || b < a || b > len(ctx) {
				return nil, fmt.Errorf("pipeline answers: feature %d: offsets [%d, %d) do not fit the context of %d code points", i, a, b, utf8.RuneCountInString(examples[e].Context))
			}
			text := string(ctx[a:b])
			if j := indexText(out[e], text); j >= 0 {
				out[e][j].Score += float64(sp.p) // in float64, as the pipeline's Python floats
				continue
			}
			out[e] = append(out[e], PipelineAnswer{Text: text, Start: a, End: b, Score: float64(sp.p)})
		}
	}
	for e := range out {
		if opts.HandleImpossibleAnswer {
			out[e] = append(out[e], PipelineAnswer{Score: float64(nulls[e])})
		}
		sort.SliceStable(out[e], func(a, b int) bool { return out[e][a].Score > out[e][b].Score })
		out[e] = out[e][:min(len(out[e]), opts.TopK)]
	}
	return out, nil
}

// windowProbs is the softmax of one window's logits over the tokens the
// pipeline lets into it: the context tokens and [CLS] (index 0); the others
// get -10000 as there, so a probability of 0 in float32.
func windowProbs(f *Feature, logits []float32) []float32 {
	p := make([]float32, len(logits))
	mx := float32(math.Inf(-1))
	for i, v := range logits {
		if i != 0 && f.Offsets[i] == NoOffset {
			v = -10000
		}
		p[i] = v
		mx = max(mx, v)
	}
	var sum float32
	for i, v := range p {
		p[i] = float32(math.Exp(float64(v - mx)))
		sum += p[i]
	}
	for i := range p {
		p[i] /= sum
	}
	return p
}

type span struct {
	s, e int
	p    float32
}

// topSpans are the k most probable spans of a window (end ≥ start, at most
// maxLen tokens, both ends context tokens, probability above 0), best first.
func topSpans(f *Feature, ps, pe []float32, k, maxLen int) []span {
	var all []span
	for s := range ps {
		if f.Offsets[s] == NoOffset || ps[s] == 0 {
			continue
		}
		for e := s; e < len(pe) && e-s < maxLen; e++ {
			if f.Offsets[e] == NoOffset {
				continue
			}
			if p := ps[s] * pe[e]; p > 0 {
				all = append(all, span{s, e, p})
			}
		}
	}
	sort.SliceStable(all, func(a, b int) bool { return all[a].p > all[b].p })
	return all[:min(len(all), k)]
}

func indexText(as []PipelineAnswer, text string) int {
	for i, a := range as {
		if a.Text == text {
			return i
		}
	}
	return -1
}
