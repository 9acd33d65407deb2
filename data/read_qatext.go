package data

import (
	"fmt"
	"regexp"
	"strings"
)

var (
	qaQuestionLine = regexp.MustCompile(`^(?i:q|question)\s*:`)
	qaAnswerLine   = regexp.MustCompile(`^(?i:a|answer)\s*:`)
)

// readQAText parses blocks of "Q: ..." / "A: ..." lines ("Question:" and
// "Answer:" too, in any case). A question may continue over several lines
// until its answer; an answer continues until the next question, the next
// answer or a blank line. Several A: lines after one question give several
// pairs with that question.
func readQAText(data []byte, name string, r *ReadResult) error {
	const (
		idle = iota
		inQuestion
		inAnswer
	)
	set := newPairSet(r)
	state := idle
	var q, a strings.Builder
	qLine, nAnswers := 0, 0
	finishAnswer := func() {
		// A question's first pair is "line-N" (N: the Q: line), further
		// answers to it "line-N-2", "line-N-3", …
		id := fmt.Sprintf("line-%d", qLine)
		if nAnswers++; nAnswers > 1 {
			id = fmt.Sprintf("line-%d-%d", qLine, nAnswers)
		}
		set.add(Pair{ID: id, Question: q.String(), Answer: a.String(), Line: qLine})
		a.Reset()
	}
	lines := strings.Split(string(data), "\n")
	for i, raw := range lines {
		n := i + 1
		line := strings.TrimSpace(strings.TrimSuffix(raw, "\r"))
		switch {
		case qaQuestionLine.MatchString(line):
			switch state {
			case inAnswer:
				finishAnswer()
			case inQuestion:
				set.add(Pair{ID: fmt.Sprintf("line-%d", qLine), Question: q.String(), Line: qLine})
			}
			q.Reset()
			q.WriteString(strings.TrimSpace(line[strings.IndexByte(line, ':')+1:]))
			qLine, nAnswers = n, 0
			state = inQuestion
		case qaAnswerLine.MatchString(line):
			switch state {
			case idle:
				return fmt.Errorf("%s:%d: answer without a question (a block starts with Q: or Question:)", name, n)
			case inAnswer:
				finishAnswer()
			}
			a.WriteString(strings.TrimSpace(line[strings.IndexByte(line, ':')+1:]))
			state = inAnswer
		case line == "":
			if state == inAnswer {
				finishAnswer()
				state = idle
			}
		default:
			switch state {
			case idle:
				return fmt.Errorf("%s:%d: expected a line starting with Q: or Question:, got %q", name, n, clip(line, 40))
			case inQuestion:
				appendLine(&q, line, " ")
			case inAnswer:
				appendLine(&a, line, "\n")
			}
		}
	}
	switch state {
	case inAnswer:
		finishAnswer()
	case inQuestion:
		set.add(Pair{ID: fmt.Sprintf("line-%d", qLine), Question: q.String(), Line: qLine})
	}
	return nil
}

func appendLine(b *strings.Builder, line, sep string) {
	if b.Len() > 0 {
		b.WriteString(sep)
	}
	b.WriteString(line)
}

// clip shortens s to at most n code points for error messages.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
