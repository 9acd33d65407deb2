package data

import (
	"bytes"
	"fmt"
	"strings"
)

// SkipEmptyContext is a reason for skipping a record that has a context.
const SkipEmptyContext = "empty context"

// forEachLine calls fn with each non-blank line and its 1-based number.
func forEachLine(data []byte, fn func(n int, line []byte) error) error {
	n := 0
	for len(data) > 0 {
		n++
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if err := fn(n, line); err != nil {
			return err
		}
	}
	return nil
}

// readJSONL parses one {question, answer[, id]} object per line, or a JSON
// array of such objects.
func readJSONL(data []byte, name string, r *ReadResult) error {
	set := newPairSet(r)
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) > 0 && t[0] == '[' {
		doc, err := decodeJSON(data, 1)
		if err != nil {
			return fmt.Errorf("%s:%w", name, err)
		}
		items, err := doc.array()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		for i, it := range items {
			p, err := pairFromJSON(it, fmt.Sprintf("item-%d", i))
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			set.add(p)
		}
		return nil
	}
	return forEachLine(data, func(n int, line []byte) error {
		v, err := decodeJSON(line, n)
		if err != nil {
			return fmt.Errorf("%s:%w", name, err)
		}
		p, err := pairFromJSON(v, fmt.Sprintf("line-%d", n))
		if err != nil {
			return fmt.Errorf("%s:%d: %w", name, n, err)
		}
		p.Line = n
		set.add(p)
		return nil
	})
}

func pairFromJSON(v jval, defaultID string) (Pair, error) {
	if _, err := v.object(); err != nil {
		return Pair{}, err
	}
	q, err := v.get("question").text()
	if err != nil {
		return Pair{}, err
	}
	a, err := v.get("answer").text()
	if err != nil {
		return Pair{}, err
	}
	id := defaultID
	if idv := v.get("id"); !idv.missing && idv.v != nil {
		if id, err = idv.text(); err != nil {
			return Pair{}, err
		}
	}
	return Pair{ID: id, Question: q, Answer: a}, nil
}

// readHFJSONL parses HF QA records, one per line:
// {id, question, context, answers: {text: [...], answer_start: [...]}}.
// The SQuAD answer list form [{text, answer_start}] is accepted too.
func readHFJSONL(data []byte, name string, r *ReadResult) error {
	set := newExampleSet(r)
	return forEachLine(data, func(n int, line []byte) error {
		v, err := decodeJSON(line, n)
		if err != nil {
			return fmt.Errorf("%s:%w", name, err)
		}
		ex, err := exampleFromJSON(v)
		if err != nil {
			return fmt.Errorf("%s:%d: %w", name, n, err)
		}
		set.add(ex)
		return nil
	})
}

func exampleFromJSON(v jval) (Example, error) {
	var ex Example
	if _, err := v.object(); err != nil {
		return ex, err
	}
	var err error
	if ex.ID, err = v.get("id").text(); err != nil {
		return ex, err
	}
	if ex.Question, err = v.get("question").str(); err != nil {
		return ex, err
	}
	if ex.Context, err = v.get("context").str(); err != nil {
		return ex, err
	}
	if t := v.get("title"); !t.missing && t.v != nil {
		if ex.Title, err = t.str(); err != nil {
			return ex, err
		}
	}
	ans := v.get("answers")
	if _, isList := ans.v.([]any); isList {
		ex.Answers, err = squadAnswers(ans)
	} else {
		ex.Answers, err = hfAnswers(ans)
	}
	return ex, err
}

func hfAnswers(v jval) (Answers, error) {
	var a Answers
	if _, err := v.object(); err != nil {
		return a, err
	}
	texts, err := v.get("text").array()
	if err != nil {
		return a, err
	}
	starts, err := v.get("answer_start").array()
	if err != nil {
		return a, err
	}
	if len(texts) != len(starts) {
		return a, v.errorf("%d texts but %d answer_start values", len(texts), len(starts))
	}
	for i := range texts {
		if err := a.addJSON(texts[i], starts[i]); err != nil {
			return a, err
		}
	}
	return a, nil
}

// squadAnswers reads the SQuAD form [{text, answer_start}, ...].
func squadAnswers(v jval) (Answers, error) {
	var a Answers
	if v.missing || v.v == nil {
		return a, nil
	}
	err := v.eachObject(func(it jval) error {
		return a.addJSON(it.get("text"), it.get("answer_start"))
	})
	return a, err
}

// addJSON appends the answer whose text and answer_start are the JSON values
// text and start, which must be a string and an integer.
func (a *Answers) addJSON(text, start jval) error {
	t, err := text.str()
	if err != nil {
		return err
	}
	s, err := start.integer()
	if err != nil {
		return err
	}
	a.Text = append(a.Text, t)
	a.AnswerStart = append(a.AnswerStart, s)
	return nil
}

// exampleSet keeps records with contexts: answers that are empty or not at
// their answer_start are dropped and counted, records whose answers were all
// dropped or with an id seen before are skipped and counted. A record given
// no answers at all (SQuAD 2.0's unanswerable questions) is kept, with none.
type exampleSet struct {
	r   *ReadResult
	ids map[string]bool
}

func newExampleSet(r *ReadResult) *exampleSet {
	return &exampleSet{r: r, ids: map[string]bool{}}
}

func (s *exampleSet) add(ex Example) {
	s.r.Records++
	if strings.TrimSpace(ex.Question) == "" {
		s.r.skip(SkipEmptyQuestion)
		return
	}
	if strings.TrimSpace(ex.Context) == "" {
		s.r.skip(SkipEmptyContext)
		return
	}
	if s.ids[ex.ID] {
		s.r.skip(SkipDuplicateID)
		return
	}
	if len(ex.Answers.Text) == 0 {
		s.ids[ex.ID] = true
		s.r.Examples = append(s.r.Examples, ex)
		return
	}
	var kept Answers
	for i, t := range ex.Answers.Text {
		one := Example{ID: ex.ID, Context: ex.Context,
			Answers: Answers{Text: []string{t}, AnswerStart: []int{ex.Answers.AnswerStart[i]}}}
		switch {
		case strings.TrimSpace(t) == "":
			s.r.drop(DropEmptyAnswer)
		case one.CheckAnswers() != nil:
			s.r.drop(DropMisplaced)
		default:
			kept.Text = append(kept.Text, t)
			kept.AnswerStart = append(kept.AnswerStart, ex.Answers.AnswerStart[i])
		}
	}
	if len(kept.Text) == 0 {
		s.r.skip(SkipNoAnswer)
		return
	}
	ex.Answers = kept
	s.ids[ex.ID] = true
	s.r.Examples = append(s.r.Examples, ex)
}
