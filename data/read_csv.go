package data

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

var (
	csvQuestionNames = []string{"question", "questions", "q", "query"}
	csvAnswerNames   = []string{"answer", "answers", "a", "answer_text"}
)

// readCSV parses a comma- or tab-separated file whose header names the
// question and answer columns (and optionally an id column). Quoted fields may
// hold separators and newlines.
func readCSV(data []byte, name string, comma rune, r *ReadResult) error {
	cr := csv.NewReader(bytes.NewReader(data))
	cr.Comma = comma
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = comma == '\t'
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: empty file, want a header naming the question and answer columns", name)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	qCol, aCol, idCol := -1, -1, -1
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		switch {
		case qCol < 0 && slices.Contains(csvQuestionNames, h):
			qCol = i
		case aCol < 0 && slices.Contains(csvAnswerNames, h):
			aCol = i
		case idCol < 0 && h == "id":
			idCol = i
		}
	}
	if qCol < 0 || aCol < 0 {
		return fmt.Errorf("%s:1: the header must name a question column (%s) and an answer column (%s); it has %q",
			name, strings.Join(csvQuestionNames, "|"), strings.Join(csvAnswerNames, "|"), header)
	}
	need := max(qCol, aCol, idCol) + 1
	set := newPairSet(r)
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue // a blank line
		}
		if len(rec) < need {
			return fmt.Errorf("%s:%d: record has %d fields, the question and answer columns need %d", name, line, len(rec), need)
		}
		id := fmt.Sprintf("line-%d", line)
		if idCol >= 0 && strings.TrimSpace(rec[idCol]) != "" {
			id = strings.TrimSpace(rec[idCol])
		}
		set.add(Pair{ID: id, Question: rec[qCol], Answer: rec[aCol], Line: line})
	}
}
