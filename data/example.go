package data

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// Example is one question with its context and gold answers. Its JSON form is
// the Hugging Face QA record (the hf-jsonl format):
//
//	{"id": ..., "question": ..., "context": ..., "answers": {"text": [...], "answer_start": [...]}}
type Example struct {
	ID       string  `json:"id"`
	Title    string  `json:"title,omitempty"`
	Question string  `json:"question"`
	Context  string  `json:"context"`
	Answers  Answers `json:"answers"`
}

// Answers holds the gold answers of an example as parallel lists, as HF
// datasets store them. AnswerStart counts code points into the context. An
// unanswerable question (SQuAD 2.0) has none.
type Answers struct {
	Text        []string `json:"text"`
	AnswerStart []int    `json:"answer_start"`
}

// MarshalJSON writes empty lists, never null, for no answers: HF datasets'
// SQuAD 2.0 records ({"text": [], "answer_start": []}).
func (a Answers) MarshalJSON() ([]byte, error) {
	type plain Answers
	if a.Text == nil {
		a.Text = []string{}
	}
	if a.AnswerStart == nil {
		a.AnswerStart = []int{}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // as WriteExamplesJSONL writes the rest
	if err := enc.Encode(plain(a)); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// HasAnswer reports whether the example has a gold answer (SQuAD 2.0's
// unanswerable questions have none).
func (e *Example) HasAnswer() bool { return len(e.Answers.Text) > 0 }

// Pair is a question and its answer as read from a file without contexts.
type Pair struct {
	ID       string
	Question string
	Answer   string
	// Line is the 1-based line of the file where the record starts (0 if unknown).
	Line int
}

// runeSpan returns the code points [start, end) of s, and false when the span
// lies outside s.
func runeSpan(s string, start, end int) (string, bool) {
	if start < 0 || end < start {
		return "", false
	}
	n, begin := 0, -1
	for i := range s {
		if n == start {
			begin = i
		}
		if n == end {
			return s[begin:i], true
		}
		n++
	}
	if start == n {
		begin = len(s)
	}
	if end == n && begin >= 0 {
		return s[begin:], true
	}
	return "", false
}

// answerSpans returns the code-point [start, end) span of each gold answer.
func (e *Example) answerSpans() ([][2]int, error) {
	if len(e.Answers.Text) != len(e.Answers.AnswerStart) {
		return nil, fmt.Errorf("example %q: %d answer texts but %d answer starts",
			e.ID, len(e.Answers.Text), len(e.Answers.AnswerStart))
	}
	spans := make([][2]int, len(e.Answers.Text))
	for i, t := range e.Answers.Text {
		s := e.Answers.AnswerStart[i]
		spans[i] = [2]int{s, s + utf8.RuneCountInString(t)}
	}
	return spans, nil
}

// CheckAnswers reports whether every answer of e is found verbatim at its
// answer_start in the context (in code points), naming the first that is not.
func (e *Example) CheckAnswers() error {
	spans, err := e.answerSpans()
	if err != nil {
		return err
	}
	for i, sp := range spans {
		got, ok := runeSpan(e.Context, sp[0], sp[1])
		if !ok || got != e.Answers.Text[i] {
			return fmt.Errorf("example %q: answer %d %q is not at answer_start %d of the context",
				e.ID, i, e.Answers.Text[i], sp[0])
		}
	}
	return nil
}
