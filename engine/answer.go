package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/loraqa/loraqa/data"
	"github.com/loraqa/loraqa/internal/errkind"
	"github.com/loraqa/loraqa/torch"
)

// Query is one question over one context, or over several passages (a
// retriever's top k): Answer and AnswerBatch then rank the spans of all
// windows of all passages together (see Passages).
type Query struct {
	ID       string // Predict: the prediction's id ("" = the query's index)
	Question string
	Context  string
	// Passages, instead of Context, are the passages to answer from: the
	// spans of all their windows compete as the windows of one context do
	// (start+end logits, the n best's softmax as scores), and each answer
	// names its passage.
	Passages []string
	Adapter  string // the adapter to answer with; "" = the default
	TopK     int    // answers wanted, best first; 0 = 1 (at most Options.Post.NBestSize)
}

// Answer is one answer span: start and end are code-point offsets into the
// context, score the softmax over the n best candidates. For a query with
// Passages, start and end are offsets into passage Passage, and the n best
// are those of all passages.
//
// With SQuAD 2.0 post-processing (Engine.Version2) the first answer of a
// Result is the decision and carries NullScore and BestSpanScore; when the
// null score beats the best span's by more than the threshold it abstains:
// Answer "", NoAnswer true, Start and End -1. Without SQuAD 2.0 these fields
// are absent from the JSON, which is then as before.
type Answer struct {
	Answer  string  `json:"answer"`
	Score   float64 `json:"score"`
	Start   int     `json:"start"`
	End     int     `json:"end"`
	Passage *int    `json:"passage,omitempty"` // set for a query with Passages
	// NoAnswer: the model abstains (Answer is "").
	NoAnswer bool `json:"no_answer,omitempty"`
	// NullScore is the null answer's score, the [CLS] start+end logits;
	// BestSpanScore the start+end logits of the best span with a text. The
	// query is answered "" when NullScore − BestSpanScore > the threshold.
	// Both are set on a Result's first answer with SQuAD 2.0 only.
	NullScore     *float64 `json:"null_score,omitempty"`
	BestSpanScore *float64 `json:"best_span_score,omitempty"`
}

// Result is the answer to one query (of Answer, AnswerBatch or Predict):
// its k best answers, best first, and the adapter that gave them ("" for
// the base alone). ID is the query's (Predict: else its index).
type Result struct {
	ID      string
	Answers []Answer
	Adapter string
	// NullOdds is, with SQuAD 2.0 post-processing, the null score minus the
	// best span's in float32 as Hugging Face computes it: what the official
	// null_odds.json holds for the query. nil without SQuAD 2.0.
	NullOdds *float64
}

// result is the Result of p for a query that wants k answers, as post
// options po made it.
func result(p data.Prediction, k int, po data.PostprocessOptions, adapter string) Result {
	if po.Version2WithNegative && p.NullOdds != nil {
		return Result{ID: p.ID, Answers: answersV2(p, k), Adapter: adapter, NullOdds: p.NullOdds}
	}
	return Result{ID: p.ID, Answers: answers(p, k), Adapter: adapter}
}

// answersV2 lists the answers of a SQuAD 2.0 prediction: first the decision
// (p's chosen candidate: the null answer when it abstains, else the best
// span with a text) with the null and best span scores, then the other
// spans of the n best in order, up to k in all. The null answer appears
// only as the decision.
func answersV2(p data.Prediction, k int) []Answer {
	best := slices.IndexFunc(p.NBest, func(c data.Candidate) bool { return c.Text != "" })
	null := slices.IndexFunc(p.NBest, func(c data.Candidate) bool { return c.Text == "" && c.Start == -1 })
	first := Answer{Answer: p.Text, Score: p.Score, Start: p.Start, End: p.End, NoAnswer: p.Text == ""}
	if best >= 0 {
		s := float64(p.NBest[best].StartLogit + p.NBest[best].EndLogit)
		first.BestSpanScore = &s
	}
	if null >= 0 {
		s := float64(p.NBest[null].StartLogit + p.NBest[null].EndLogit)
		first.NullScore = &s
	} else if first.BestSpanScore != nil {
		s := *first.BestSpanScore + *p.NullOdds
		first.NullScore = &s
	}
	out := []Answer{first}
	for _, c := range p.NBest {
		if len(out) >= k {
			break
		}
		if c.Text == "" || (c.Start == p.Start && c.End == p.End) {
			continue
		}
		out = append(out, Answer{Answer: c.Text, Score: c.Score, Start: c.Start, End: c.End})
	}
	return out
}

// answers lists the k best candidates of p, best first (at least one: p's
// own span when it has no candidates).
func answers(p data.Prediction, k int) []Answer {
	var out []Answer
	for i, c := range p.NBest {
		if i >= k {
			break
		}
		out = append(out, Answer{Answer: c.Text, Score: c.Score, Start: c.Start, End: c.End})
	}
	if len(out) == 0 {
		out = append(out, Answer{Answer: p.Text, Score: p.Score, Start: p.Start, End: p.End})
	}
	return out
}

// withKind and kindf mark an error with one of the kinds (ErrBadInput, ...).
var (
	withKind = errkind.With
	kindf    = errkind.Errorf
)

// QueryError is the failure of one query of a batch: its index and why.
type QueryError struct {
	Index int
	Err   error
}

// Error names the query and says what was wrong with it.
func (e *QueryError) Error() string { return fmt.Sprintf("query %d: %v", e.Index, e.Err) }

// Unwrap is the query's error.
func (e *QueryError) Unwrap() error { return e.Err }

// featurize cuts queries into windows as sv's windows say; the examples'
// ids are the queries' (else their index).
func featurize(sv *served, qs []Query) ([]data.Feature, []data.Example, error) {
	ex := make([]data.Example, len(qs))
	for i, q := range qs {
		id := q.ID
		if id == "" {
			id = fmt.Sprint(i)
		}
		ex[i] = data.Example{ID: id, Question: q.Question, Context: q.Context}
	}
	fo := sv.feat
	fo.NegativeFraction = 1
	feats, _, err := data.Featurize(sv.tok, ex, fo)
	if err != nil {
		return nil, nil, kindf(ErrBadInput, "cannot cut the context into windows: %v", err)
	}
	if len(feats) == 0 {
		return nil, nil, kindf(ErrBadInput, "cannot cut the context into windows: no window could be made (empty question or context?)")
	}
	return feats, ex, nil
}

// checkQuery refuses what no model can answer.
func (e *Engine) checkQuery(q Query) error {
	switch {
	case strings.TrimSpace(q.Question) == "":
		return kindf(ErrBadInput, "the question is empty")
	case len(q.Passages) > 0 && q.Context != "":
		return kindf(ErrBadInput, "give a context or passages, not both")
	case len(q.Passages) == 0 && strings.TrimSpace(q.Context) == "":
		return kindf(ErrBadInput, "the context is empty")
	case q.TopK < 0 || q.TopK > e.opt.Post.NBestSize:
		return kindf(ErrBadInput, "top_k %d: it must be between 1 and %d", q.TopK, e.opt.Post.NBestSize)
	}
	for i, p := range q.Passages {
		if strings.TrimSpace(p) == "" {
			return kindf(ErrBadInput, "passage %d is empty", i)
		}
	}
	return nil
}

// passageQueries are q's passages as queries of their own, with their
// indexes as ids.
func passageQueries(q Query) []Query {
	qs := make([]Query, len(q.Passages))
	for i, p := range q.Passages {
		qs[i] = Query{ID: fmt.Sprint(i), Question: q.Question, Context: p}
	}
	return qs
}

// passageResult answers one query over passages (exs, one example per
// passage, ids their indexes) as HF's run_qa post-processing answers over
// the windows of one context: the spans of all windows of all passages
// ranked by their start+end logits, the n best of them scored by a softmax
// over those, the k best returned, each naming its passage. One passage
// gives what its context would. With SQuAD 2.0 (po) each passage first
// decides as a context alone would (its null odds against the adapter's
// threshold): only the passages that answer give spans, and when every
// passage abstains the answer is the null one, with the null and best span
// scores of the passage closest to answering (the lowest null odds).
func passageResult(exs []data.Example, feats []data.Feature, starts, ends [][]float32, k int, po data.PostprocessOptions) (Result, error) {
	preds, err := data.Postprocess(exs, feats, starts, ends, po)
	if err != nil {
		return Result{}, err
	}
	withPassage := func(r Result, p int) Result {
		for i := range r.Answers {
			r.Answers[i].Passage = &p
		}
		return r
	}
	if len(preds) == 1 {
		return withPassage(result(preds[0], k, po, ""), 0), nil
	}
	type span struct {
		data.Candidate
		passage int
		logits  float64
	}
	var spans []span
	var closest Result
	closestAt := -1
	for p, pred := range preds {
		if po.Version2WithNegative {
			if r := result(pred, 1, po, ""); r.NullOdds != nil && (closestAt < 0 || *r.NullOdds < *closest.NullOdds) {
				closest, closestAt = r, p
			}
			if pred.Text == "" {
				continue // this passage abstains
			}
		}
		for _, c := range pred.NBest {
			if c.Text != "" && c.Start >= 0 {
				spans = append(spans, span{c, p, float64(c.StartLogit + c.EndLogit)})
			}
		}
	}
	if len(spans) == 0 {
		if closestAt >= 0 { // every passage abstains
			return withPassage(Result{Answers: closest.Answers[:1], NullOdds: closest.NullOdds}, closestAt), nil
		}
		return withPassage(result(preds[0], 1, po, ""), 0), nil // no span anywhere: passage 0's placeholder
	}
	slices.SortStableFunc(spans, func(a, b span) int { return cmp.Compare(b.logits, a.logits) })
	spans = spans[:min(len(spans), po.NBestSize)]
	top := spans[0].logits
	var sum float64
	for _, s := range spans {
		sum += math.Exp(s.logits - top)
	}
	var out []Answer
	for _, s := range spans[:min(len(spans), k)] {
		p := s.passage
		out = append(out, Answer{Answer: s.Text, Score: math.Exp(s.logits-top) / sum, Start: s.Start, End: s.End, Passage: &p})
	}
	if po.Version2WithNegative { // the margins of the passage answering first
		first := result(preds[spans[0].passage], 1, po, "").Answers[0]
		out[0].NullScore, out[0].BestSpanScore = first.NullScore, first.BestSpanScore
	}
	return Result{Answers: out}, nil
}

// Answer answers one query: its adapter's k best answers.
func (e *Engine) Answer(ctx context.Context, q Query) (Result, error) {
	rs, err := e.AnswerBatch(ctx, []Query{q})
	if err != nil {
		var qe *QueryError
		if errors.As(err, &qe) {
			err = qe.Err
		}
		return Result{}, err
	}
	return rs[0], nil
}

// AnswerBatch answers queries, each with its own adapter. They are queued
// for the model worker all together or not at all (ErrBusy), and each runs
// as a query alone would (so batching never changes an answer, unless
// Options.Fuse). An error about one query is a *QueryError naming it.
// When ctx ends first, its error is returned.
func (e *Engine) AnswerBatch(ctx context.Context, qs []Query) ([]Result, error) {
	jobs := make([]*job, len(qs))
	exs := make([][]data.Example, len(qs)) // one example, or one per passage
	for i, q := range qs {
		if err := e.checkQuery(q); err != nil {
			return nil, &QueryError{Index: i, Err: err}
		}
		sv, err := e.lookup(q.Adapter)
		if err != nil {
			return nil, &QueryError{Index: i, Err: err}
		}
		q.ID = ""
		sub := []Query{q}
		if len(q.Passages) > 0 {
			sub = passageQueries(q)
		}
		feats, ex, err := featurize(sv, sub)
		if err != nil {
			return nil, &QueryError{Index: i, Err: err}
		}
		exs[i] = ex
		jobs[i] = &job{ctx: ctx, model: sv, feats: feats, done: make(chan jobResult, 1)}
	}
	if err := e.enqueue(jobs); err != nil {
		return nil, err
	}
	out := make([]Result, len(qs))
	for i, j := range jobs {
		r, err := e.wait(ctx, j)
		if err != nil {
			return nil, &QueryError{Index: i, Err: err}
		}
		k := max(qs[i].TopK, 1)
		if len(qs[i].Passages) > 0 {
			out[i], err = passageResult(exs[i], j.feats, r.starts, r.ends, k, j.model.post)
			if err != nil {
				return nil, &QueryError{Index: i, Err: err}
			}
			out[i].ID, out[i].Adapter = qs[i].ID, j.model.Name
			continue
		}
		preds, err := data.Postprocess(exs[i], j.feats, r.starts, r.ends, j.model.post)
		if err != nil {
			return nil, &QueryError{Index: i, Err: err}
		}
		out[i] = result(preds[0], k, j.model.post, j.model.Name)
		out[i].ID = qs[i].ID
	}
	return out, nil
}

// wait waits for a job's logits.
func (e *Engine) wait(ctx context.Context, j *job) (jobResult, error) {
	var r jobResult
	select {
	case r = <-j.done:
	case <-ctx.Done():
		return r, ctx.Err()
	}
	switch {
	case r.err == nil:
		return r, nil
	case ctx.Err() != nil:
		return r, ctx.Err()
	case errors.Is(r.err, ErrUnloaded):
		return r, kindf(ErrUnloaded, "adapter %q was unloaded", j.model.Name)
	}
	var le *torch.Error
	if errors.As(r.err, &le) && le.IsOutOfMemory() {
		return r, withKind(ErrOutOfMemory, fmt.Errorf("model: %w", r.err))
	}
	return r, fmt.Errorf("model: %w", r.err)
}

// Predict answers a whole set of queries (eval), all with the adapter of
// the first (they must all name the same one): every window of every query
// goes through the model in batches of BatchSize, as one job of the worker.
// Each result carries the query's TopK best answers (0: 1) and its id
// (else its index).
func (e *Engine) Predict(ctx context.Context, qs []Query) ([]Result, error) {
	if len(qs) == 0 {
		return nil, nil
	}
	for i, q := range qs {
		if len(q.Passages) > 0 {
			return nil, &QueryError{Index: i, Err: kindf(ErrBadInput, "Predict answers one context per query; Answer and AnswerBatch take passages")}
		}
		if q.Adapter != qs[0].Adapter {
			return nil, &QueryError{Index: i, Err: kindf(ErrBadInput, "Predict runs one adapter: query 0 names %q, this one %q", qs[0].Adapter, q.Adapter)}
		}
	}
	sv, err := e.lookup(qs[0].Adapter)
	if err != nil {
		return nil, err
	}
	feats, ex, err := featurize(sv, qs)
	if err != nil {
		return nil, err
	}
	j := &job{ctx: ctx, model: sv, feats: feats, done: make(chan jobResult, 1)}
	if err := e.enqueue([]*job{j}); err != nil {
		return nil, err
	}
	r, err := e.wait(ctx, j)
	if err != nil {
		return nil, err
	}
	preds, err := data.Postprocess(ex, feats, r.starts, r.ends, sv.post)
	if err != nil {
		return nil, err
	}
	out := make([]Result, len(preds))
	for i, p := range preds {
		out[i] = result(p, max(qs[i].TopK, 1), sv.post, sv.Name)
	}
	return out, nil
}
