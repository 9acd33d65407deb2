package data

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"unicode"

	"github.com/loraqa/loraqa/internal/orderedjson"
)

// Metrics are the official SQuAD v1.1 scores, in percent (0–100); MetricsV2
// are those of SQuAD 2.0.
type Metrics struct {
	ExactMatch float64 `json:"exact_match"`
	F1         float64 `json:"f1"`
	N          int     `json:"n"`       // examples scored
	Missing    int     `json:"missing"` // examples without a prediction (scored 0)
}

// NormalizeAnswer is the official SQuAD v1.1 normalize_answer: lower-case,
// drop ASCII punctuation, drop the articles a/an/the as whole words, and
// collapse whitespace.
func NormalizeAnswer(s string) string {
	s = pyLower(s)
	s = strings.Map(func(r rune) rune {
		if r < 0x80 && isASCIIPunct(r) {
			return -1
		}
		return r
	}, s)
	s = removeArticles(s)
	return strings.Join(pySplit(s), " ")
}

// ExactMatch is 1 when the normalized texts are equal, else 0.
func ExactMatch(pred, gold string) float64 {
	if NormalizeAnswer(pred) == NormalizeAnswer(gold) {
		return 1
	}
	return 0
}

// F1Score is the token-overlap F1 of the normalized texts (0–1).
func F1Score(pred, gold string) float64 {
	p := pySplit(NormalizeAnswer(pred))
	g := pySplit(NormalizeAnswer(gold))
	counts := map[string]int{}
	for _, t := range g {
		counts[t]++
	}
	same := 0
	for _, t := range p {
		if counts[t] > 0 {
			counts[t]--
			same++
		}
	}
	if same == 0 {
		return 0
	}
	precision := float64(same) / float64(len(p))
	recall := float64(same) / float64(len(g))
	return 2 * precision * recall / (precision + recall)
}

// SquadEM is the best ExactMatch of pred over the gold answers (0 or 1).
func SquadEM(pred string, golds []string) float64 { return bestOver(ExactMatch, pred, golds) }

// SquadF1 is the best F1Score of pred over the gold answers (0–1).
func SquadF1(pred string, golds []string) float64 { return bestOver(F1Score, pred, golds) }

func bestOver(metric func(string, string) float64, pred string, golds []string) float64 {
	best := 0.0
	for _, g := range golds {
		best = max(best, metric(pred, g))
	}
	return best
}

// Evaluate scores predictions against the examples' gold answers as the
// official SQuAD v1.1 script does: every example counts, one without a
// prediction scores 0.
func Evaluate(preds []Prediction, examples []Example) Metrics {
	texts := make(map[string]string, len(preds))
	for _, p := range preds {
		texts[p.ID] = p.Text
	}
	return EvaluateTexts(texts, examples)
}

// EvaluateTexts is Evaluate with predictions given as id → answer text.
//
// An example without gold answers (SQuAD 2.0) is scored as the SQuAD 2.0
// script scores it — exact match and F1 1 when the prediction normalizes to
// "", else 0 — where the v1.1 script would fail; answerable examples keep the
// v1.1 rules.
func EvaluateTexts(preds map[string]string, examples []Example) Metrics {
	var m Metrics
	em, f1 := 0.0, 0.0
	for _, ex := range examples {
		m.N++
		p, ok := preds[ex.ID]
		if !ok {
			m.Missing++
			continue
		}
		if len(ex.Answers.Text) == 0 {
			em += ExactMatch(p, "")
			f1 += F1ScoreV2(p, "")
			continue
		}
		em += SquadEM(p, ex.Answers.Text)
		f1 += SquadF1(p, ex.Answers.Text)
	}
	if m.N > 0 {
		m.ExactMatch = 100 * em / float64(m.N)
		m.F1 = 100 * f1 / float64(m.N)
	}
	return m
}

// F1ScoreV2 is the SQuAD 2.0 script's compute_f1 (0–1): F1Score, except
// that when either text normalizes to no tokens (the no-answer ""), it is 1
// if both do and 0 otherwise.
func F1ScoreV2(pred, gold string) float64 {
	p := pySplit(NormalizeAnswer(pred))
	g := pySplit(NormalizeAnswer(gold))
	if len(p) == 0 || len(g) == 0 {
		if len(p) == len(g) {
			return 1
		}
		return 0
	}
	return F1Score(pred, gold)
}

// DefaultNAProbThresh is the SQuAD 2.0 script's --na-prob-thresh: a question
// whose no-answer probability is above it is scored as answered "".
const DefaultNAProbThresh = 1.0

// MetricsV2 are the numbers of the official SQuAD 2.0 evaluation
// (evaluate-v2.0.py; transformers' squad_metrics.squad_evaluate), in
// percent. Its JSON form is the script's: the HasAns_* keys only when some
// question has an answer, the NoAns_* keys only when some has none, the
// best_* keys only when no-answer probabilities were given.
type MetricsV2 struct {
	Exact float64 `json:"exact"`
	F1    float64 `json:"f1"`
	Total int     `json:"total"` // questions with a prediction
	// HasAns* are over the questions with gold answers, NoAns* over those
	// without.
	HasAnsExact float64 `json:"HasAns_exact"`
	HasAnsF1    float64 `json:"HasAns_f1"`
	HasAnsTotal int     `json:"HasAns_total"`
	NoAnsExact  float64 `json:"NoAns_exact"`
	NoAnsF1     float64 `json:"NoAns_f1"`
	NoAnsTotal  int     `json:"NoAns_total"`
	// Best* are the exact match and F1 with the best threshold on the
	// no-answer probabilities, and those thresholds (HasBest: computed).
	BestExact       float64 `json:"best_exact"`
	BestExactThresh float64 `json:"best_exact_thresh"`
	BestF1          float64 `json:"best_f1"`
	BestF1Thresh    float64 `json:"best_f1_thresh"`
	HasBest         bool    `json:"-"`
	// Missing counts questions without a prediction: the script leaves them
	// out of every total (and fails on them in HasAns/NoAns; here they are
	// left out there too).
	Missing int `json:"-"`
}

// MarshalJSON writes the keys the SQuAD 2.0 script prints, in its order.
func (m MetricsV2) MarshalJSON() ([]byte, error) {
	type kv struct {
		k string
		v any
	}
	kvs := []kv{{"exact", m.Exact}, {"f1", m.F1}, {"total", m.Total}}
	if m.HasAnsTotal > 0 {
		kvs = append(kvs, kv{"HasAns_exact", m.HasAnsExact}, kv{"HasAns_f1", m.HasAnsF1}, kv{"HasAns_total", m.HasAnsTotal})
	}
	if m.NoAnsTotal > 0 {
		kvs = append(kvs, kv{"NoAns_exact", m.NoAnsExact}, kv{"NoAns_f1", m.NoAnsF1}, kv{"NoAns_total", m.NoAnsTotal})
	}
	if m.HasBest {
		kvs = append(kvs, kv{"best_exact", m.BestExact}, kv{"best_exact_thresh", m.BestExactThresh},
			kv{"best_f1", m.BestF1}, kv{"best_f1_thresh", m.BestF1Thresh})
	}
	b, err := orderedjson.Marshal(len(kvs), func(i int) (string, any) { return kvs[i].k, kvs[i].v })
	if err != nil {
		return nil, fmt.Errorf("metrics %w", err)
	}
	return b, nil
}

// UnmarshalJSON reads what MarshalJSON writes: HasBest is set when the
// best_* keys are there (Missing is not written, so it reads as 0).
func (m *MetricsV2) UnmarshalJSON(b []byte) error {
	type plain MetricsV2
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(b, &keys); err != nil {
		return err
	}
	if err := json.Unmarshal(b, (*plain)(m)); err != nil {
		return err
	}
	_, m.HasBest = keys["best_f1_thresh"]
	return nil
}

// EvaluateV2 is the official SQuAD 2.0 evaluation of Postprocess's
// predictions: their texts, and their NullOdds as the no-answer
// probabilities (the script's --na-prob-file null_odds.json; none when no
// prediction has them, as without Version2WithNegative), with
// DefaultNAProbThresh.
func EvaluateV2(preds []Prediction, examples []Example) MetricsV2 {
	texts := make(map[string]string, len(preds))
	var naProbs map[string]float64
	for _, p := range preds {
		texts[p.ID] = p.Text
		if p.NullOdds != nil {
			if naProbs == nil {
				naProbs = make(map[string]float64, len(preds))
			}
			naProbs[p.ID] = *p.NullOdds
		}
	}
	return EvaluateTextsV2(texts, naProbs, examples, DefaultNAProbThresh)
}

// EvaluateTextsV2 is evaluate-v2.0.py on the examples (the data file; an
// example without gold answers is unanswerable), predictions as id → text
// ("" for no answer) and no-answer probabilities as id → value (nil: no
// --na-prob-file: all 0 and no best_* numbers), with --na-prob-thresh
// naProbThresh:
//
//   - gold answers that normalize to "" are dropped; none left: the gold is "";
//     exact match and F1 are the best over the golds, F1 with F1ScoreV2;
//   - a question whose probability is > naProbThresh scores 1 if it has no
//     answer, else 0;
//   - best_exact/best_f1: questions in increasing order of probability (ties
//     in the examples' order, which is the order of null_odds.json), the
//     score of answering the first k and predicting no answer for the rest,
//     best over k (k = 0 included: threshold 0), and the probability of the
//     k-th question as threshold.
//
// Sums run in the examples' order, as the script's do over its data file, so
// that the numbers are the script's to the last bit.
func EvaluateTextsV2(preds map[string]string, naProbs map[string]float64, examples []Example, naProbThresh float64) MetricsV2 {
	var m MetricsV2
	type score struct {
		id        string
		hasAns    bool
		em, f1    float64 // raw
		pred      string
		predicted bool
	}
	scores := make([]score, len(examples))
	numNoAns := 0
	var exact, f1, hasExact, hasF1, noExact, noF1 float64
	for i, ex := range examples {
		s := &scores[i]
		s.id, s.hasAns = ex.ID, len(ex.Answers.Text) > 0
		if !s.hasAns {
			numNoAns++
		}
		s.pred, s.predicted = preds[ex.ID]
		if !s.predicted {
			m.Missing++
			continue
		}
		golds := make([]string, 0, len(ex.Answers.Text))
		for _, g := range ex.Answers.Text {
			if NormalizeAnswer(g) != "" {
				golds = append(golds, g)
			}
		}
		if len(golds) == 0 {
			golds = []string{""}
		}
		for _, g := range golds {
			s.em = max(s.em, ExactMatch(s.pred, g))
			s.f1 = max(s.f1, F1ScoreV2(s.pred, g))
		}
		em, f := s.em, s.f1
		if naProbs[ex.ID] > naProbThresh {
			em, f = 0, 0
			if !s.hasAns {
				em, f = 1, 1
			}
		}
		m.Total++
		exact += em
		f1 += f
		if s.hasAns {
			m.HasAnsTotal++
			hasExact += em
			hasF1 += f
		} else {
			m.NoAnsTotal++
			noExact += em
			noF1 += f
		}
	}
	pct := func(sum float64, n int) float64 {
		if n == 0 {
			return 0
		}
		return 100.0 * sum / float64(n)
	}
	m.Exact, m.F1 = pct(exact, m.Total), pct(f1, m.Total)
	m.HasAnsExact, m.HasAnsF1 = pct(hasExact, m.HasAnsTotal), pct(hasF1, m.HasAnsTotal)
	m.NoAnsExact, m.NoAnsF1 = pct(noExact, m.NoAnsTotal), pct(noF1, m.NoAnsTotal)
	if naProbs == nil {
		return m
	}
	m.HasBest = true
	var order []int
	for i := range scores {
		if _, ok := naProbs[scores[i].id]; ok {
			order = append(order, i)
		}
	}
	sort.SliceStable(order, func(a, b int) bool { return naProbs[scores[order[a]].id] < naProbs[scores[order[b]].id] })
	best := func(raw func(*score) float64) (float64, float64) {
		cur := float64(numNoAns)
		bestScore, bestThresh := cur, 0.0
		for _, i := range order {
			s := &scores[i]
			if !s.predicted {
				continue
			}
			switch {
			case s.hasAns:
				cur += raw(s)
			case s.pred != "":
				cur--
			}
			if cur > bestScore {
				bestScore, bestThresh = cur, naProbs[s.id]
			}
		}
		return pct(bestScore, m.Total), bestThresh
	}
	m.BestExact, m.BestExactThresh = best(func(s *score) float64 { return s.em })
	m.BestF1, m.BestF1Thresh = best(func(s *score) float64 { return s.f1 })
	return m
}

func isASCIIPunct(r rune) bool {
	return (r >= 33 && r <= 47) || (r >= 58 && r <= 64) || (r >= 91 && r <= 96) || (r >= 123 && r <= 126)
}

// pyLower is Python's str.lower: Go's lower case, plus the two context
// rules Python applies: İ becomes "i̇" (two code points) and a capital sigma
// ending a word becomes the final sigma ς.
func pyLower(s string) string {
	if !strings.ContainsAny(s, "İΣ") {
		return strings.ToLower(s)
	}
	rs := []rune(s)
	var b strings.Builder
	for i, r := range rs {
		switch {
		case r == 'İ':
			b.WriteString("i\u0307")
		case r == 'Σ' && i > 0 && unicode.IsLetter(rs[i-1]) && (i+1 == len(rs) || !unicode.IsLetter(rs[i+1])):
			b.WriteRune('ς')
		default:
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// pySplit is Python's str.split(): split on runs of whitespace.
func pySplit(s string) []string {
	return strings.FieldsFunc(s, isPySpace)
}

// isPySpace is Python's str.isspace for one character: Unicode White_Space
// plus the information separators U+001C–U+001F.
func isPySpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

// isPyWord is a \w character of Python's re module: a letter, a number or
// the underscore.
func isPyWord(r rune) bool {
	return r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r)
}

// removeArticles is re.sub(r"\b(a|an|the)\b", " ", s) with Python's
// Unicode-aware word boundaries.
func removeArticles(s string) string {
	rs := []rune(s)
	var b strings.Builder
	prevWord := false
	for i := 0; i < len(rs); {
		if !prevWord {
			if n := articleAt(rs, i); n > 0 {
				b.WriteByte(' ')
				i += n
				prevWord = false
				continue
			}
		}
		prevWord = isPyWord(rs[i])
		b.WriteRune(rs[i])
		i++
	}
	return b.String()
}

// articleAt returns the length of the article a, an or the starting at i
// and followed by a word boundary (0 if none).
func articleAt(rs []rune, i int) int {
	for _, art := range []string{"a", "an", "the"} {
		n := len(art)
		if i+n > len(rs) || string(rs[i:i+n]) != art {
			continue
		}
		if i+n == len(rs) || !isPyWord(rs[i+n]) {
			return n
		}
	}
	return 0
}
