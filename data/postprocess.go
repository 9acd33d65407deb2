package data

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"unicode/utf8"
)

// PostprocessOptions configures Postprocess.
type PostprocessOptions struct {
	NBestSize       int // start and end candidates per window (20)
	MaxAnswerLength int // longest span in tokens (30)
	// TopK is how many candidates each Prediction lists (0: all of the n best).
	TopK int
	// Version2WithNegative is HF's version_2_with_negative (SQuAD 2.0): the
	// null answer "" competes with the spans, and a prediction is "" when the
	// null score beats the best span's by more than NullScoreDiffThreshold.
	Version2WithNegative bool
	// NullScoreDiffThreshold is HF's null_score_diff_threshold (0): the null
	// answer is predicted when null score − best span score > it. Only used
	// with Version2WithNegative.
	NullScoreDiffThreshold float64
}

// DefaultPostprocessOptions are HF run_qa's defaults.
func DefaultPostprocessOptions() PostprocessOptions {
	return PostprocessOptions{NBestSize: 20, MaxAnswerLength: 30}
}

// Candidate is one answer span, or the null answer of SQuAD 2.0 (Text "",
// Start and End -1, the [CLS] logits of the window where they sum lowest).
type Candidate struct {
	Text       string  `json:"text"`
	Start      int     `json:"start"` // code points into the context; -1 for no span
	End        int     `json:"end"`
	StartLogit float32 `json:"start_logit"`
	EndLogit   float32 `json:"end_logit"`
	// Score is the softmax of start+end logits over the n best candidates
	// of the example (HF's "probability").
	Score float64 `json:"score"`
}

// Prediction is the answer to one example: the chosen candidate, and the top
// candidates best first. Without Version2WithNegative the chosen candidate is
// NBest[0]; with it, it is the null answer (Text "") or the best candidate
// with a non-empty text, and NBest holds the null answer too.
type Prediction struct {
	ID string `json:"id"`
	Candidate
	NBest []Candidate `json:"n_best"`
	// NullOdds is HF's score_diff, what null_odds.json holds: the null score
	// minus the start and end logits of the best non-null candidate,
	// computed in float32 as HF does on float32 logits. Set only with
	// Version2WithNegative.
	NullOdds *float64 `json:"null_odds,omitempty"`
}

// Postprocess picks, for each example, the best span over all its windows,
// with the semantics of HF's postprocess_qa_predictions: for each window the
// n_best start and n_best end tokens by logit, spans only inside the
// context, end ≥ start, at most max_answer_length tokens; candidates ranked
// by start+end logit; scores a softmax over the n best. An example with no
// valid span gets HF's placeholder text "empty" with Start -1.
//
// With opts.Version2WithNegative (SQuAD 2.0) it is HF's
// version_2_with_negative=True: the null candidate — the [CLS] start+end
// logits of the example's window where that sum is lowest (the first such
// window on ties) — joins the candidates after the spans, and is added back
// after the n best when it did not make them. The answer is "" when
// null score − (start+end logits of the best candidate with a non-empty
// text) > opts.NullScoreDiffThreshold, that candidate otherwise;
// Prediction.NullOdds holds the difference. (An example without features,
// on which HF fails, gets "empty" and no NullOdds.)
//
// Features are matched to examples by ExampleID (so features read back from
// JSON work too). startLogits[i] and endLogits[i] belong to features[i] and
// may be longer than it (padding), never shorter. Ties keep the lower token
// index first.
func Postprocess(examples []Example, features []Feature, startLogits, endLogits [][]float32, opts PostprocessOptions) ([]Prediction, error) {
	if len(startLogits) != len(features) || len(endLogits) != len(features) {
		return nil, fmt.Errorf("postprocess: %d features but %d start and %d end logit rows", len(features), len(startLogits), len(endLogits))
	}
	if opts.NBestSize <= 0 || opts.MaxAnswerLength <= 0 {
		return nil, fmt.Errorf("postprocess: n_best_size %d and max_answer_length %d must be positive", opts.NBestSize, opts.MaxAnswerLength)
	}
	index := make(map[string]int, len(examples))
	for i, ex := range examples {
		if _, dup := index[ex.ID]; dup {
			return nil, fmt.Errorf("postprocess: example id %q appears twice", ex.ID)
		}
		index[ex.ID] = i
	}
	byExample := make([][]int, len(examples))
	for i := range features {
		f := &features[i]
		e, ok := index[f.ExampleID]
		if !ok {
			return nil, fmt.Errorf("postprocess: feature %d belongs to example %q, which is not among the examples", i, f.ExampleID)
		}
		if len(f.Offsets) != len(f.InputIDs) {
			return nil, fmt.Errorf("postprocess: feature %d has %d tokens but %d offsets", i, len(f.InputIDs), len(f.Offsets))
		}
		if len(startLogits[i]) < len(f.InputIDs) || len(endLogits[i]) < len(f.InputIDs) {
			return nil, fmt.Errorf("postprocess: feature %d has %d tokens but %d start and %d end logits", i, len(f.InputIDs), len(startLogits[i]), len(endLogits[i]))
		}
		byExample[e] = append(byExample[e], i)
	}
	preds := make([]Prediction, len(examples))
	for e := range examples {
		var cands []candidate
		var null *candidate
		ctxLen := utf8.RuneCountInString(examples[e].Context)
		for _, i := range byExample[e] {
			if sl, el := startLogits[i], endLogits[i]; opts.Version2WithNegative && (null == nil || null.score > sl[0]+el[0]) {
				null = &candidate{start: -1, end: -1, startLogit: sl[0], endLogit: el[0], score: sl[0] + el[0], null: true}
			}
			var err error
			cands, err = appendCandidates(cands, &features[i], ctxLen, startLogits[i], endLogits[i], opts)
			if err != nil {
				return nil, fmt.Errorf("postprocess: feature %d (%q window %d): %w", i, features[i].ExampleID, features[i].Window, err)
			}
		}
		preds[e] = finishPrediction(&examples[e], cands, null, opts)
	}
	return preds, nil
}

// candidate is a span of code points [start, end) with its logits, or the
// null answer (null true, start and end -1).
type candidate struct {
	start, end int
	startLogit float32
	endLogit   float32
	score      float32
	null       bool
}

func appendCandidates(cands []candidate, f *Feature, ctxLen int, sl, el []float32, opts PostprocessOptions) ([]candidate, error) {
	n := len(f.InputIDs)
	starts := topIndices(sl[:n], opts.NBestSize)
	ends := topIndices(el[:n], opts.NBestSize)
	for _, s := range starts {
		for _, e := range ends {
			if f.Offsets[s] == NoOffset || f.Offsets[e] == NoOffset {
				continue
			}
			if e < s || e-s+1 > opts.MaxAnswerLength {
				continue
			}
			if a, b := f.Offsets[s][0], f.Offsets[e][1]; a < 0 || b < a || b > ctxLen {
				return nil, fmt.Errorf("offsets [%d, %d) do not fit the context of %d code points", a, b, ctxLen)
			}
			cands = append(cands, candidate{
				start: f.Offsets[s][0], end: f.Offsets[e][1],
				startLogit: sl[s], endLogit: el[e], score: sl[s] + el[e],
			})
		}
	}
	return cands, nil
}

// topIndices returns the indices of the k largest values, largest first.
func topIndices(v []float32, k int) []int {
	idx := make([]int, len(v))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return v[idx[a]] > v[idx[b]] })
	return idx[:min(k, len(idx))]
}

// finishPrediction ranks the candidates of one example (null: the null
// candidate of SQuAD 2.0, nil without it), keeps the n best and picks the
// answer, as the rest of HF's postprocess_qa_predictions does.
func finishPrediction(ex *Example, cands []candidate, null *candidate, opts PostprocessOptions) Prediction {
	if null != nil {
		cands = append(cands, *null)
	}
	sort.SliceStable(cands, func(a, b int) bool { return cands[a].score > cands[b].score })
	cands = cands[:min(len(cands), opts.NBestSize)]
	// HF looks for the null answer by its offsets (0, 0), which a span
	// starting and ending at 0 would have too.
	if null != nil && !slices.ContainsFunc(cands, func(c candidate) bool { return c.null || (c.start == 0 && c.end == 0) }) {
		cands = append(cands, *null)
	}
	ctx := []rune(ex.Context)
	var list []Candidate
	for _, c := range cands {
		text := ""
		if !c.null {
			text = string(ctx[c.start:c.end])
		}
		list = append(list, Candidate{
			Text: text, Start: c.start, End: c.end,
			StartLogit: c.startLogit, EndLogit: c.endLogit,
		})
	}
	scores := make([]float64, len(cands))
	for i, c := range cands {
		scores[i] = float64(c.score)
	}
	if len(list) == 0 || (len(list) == 1 && list[0].Text == "") {
		list = append([]Candidate{{Text: "empty", Start: -1, End: -1}}, list...)
		scores = append([]float64{0}, scores...)
	}
	softmaxInto(scores, list)
	pred := Prediction{ID: ex.ID, Candidate: list[0]}
	if null != nil {
		pred.Candidate, pred.NullOdds = chooseV2(list, null, opts.NullScoreDiffThreshold)
	}
	if opts.TopK > 0 && len(list) > opts.TopK {
		list = list[:opts.TopK]
	}
	pred.NBest = list
	return pred
}

// chooseV2 is HF's SQuAD 2.0 choice between the null answer and the best
// candidate with a non-empty text: score_diff = null score − start logit −
// end logit, and "" when score_diff > threshold, all in float32 as numpy ≥ 2
// computes it on float32 logits (the Python float threshold is cast to
// float32 for the comparison, NEP 50). HF fails when no candidate has a
// text; here the placeholder "empty" with zero logits stands in.
func chooseV2(list []Candidate, null *candidate, threshold float64) (Candidate, *float64) {
	best := Candidate{Text: "empty", Start: -1, End: -1}
	if i := slices.IndexFunc(list, func(c Candidate) bool { return c.Text != "" }); i >= 0 {
		best = list[i]
	}
	diff := null.score - best.StartLogit
	diff -= best.EndLogit
	odds := float64(diff)
	if !(diff > float32(threshold)) { // NaN: not null, as in HF
		return best, &odds
	}
	if i := slices.IndexFunc(list, func(c Candidate) bool { return c.Text == "" && c.Start == -1 }); i >= 0 {
		return list[i], &odds
	}
	return Candidate{Start: -1, End: -1, StartLogit: null.startLogit, EndLogit: null.endLogit}, &odds
}

func softmaxInto(scores []float64, list []Candidate) {
	m := math.Inf(-1)
	for _, s := range scores {
		m = math.Max(m, s)
	}
	sum := 0.0
	for i, s := range scores {
		scores[i] = math.Exp(s - m)
		sum += scores[i]
	}
	for i := range list {
		list[i].Score = scores[i] / sum
	}
}
