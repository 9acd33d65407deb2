package data

import (
	"strings"
	"unicode"
)

// Metrics are the official SQuAD v1.1 scores, in percent (0–100).
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
		em += SquadEM(p, ex.Answers.Text)
		f1 += SquadF1(p, ex.Answers.Text)
	}
	if m.N > 0 {
		m.ExactMatch = 100 * em / float64(m.N)
		m.F1 = 100 * f1 / float64(m.N)
	}
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
