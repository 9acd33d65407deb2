package data

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// checkReadResult asserts what every successful read guarantees.
func checkReadResult(t *testing.T, r *ReadResult) {
	t.Helper()
	total := r.Kept()
	for _, n := range r.Skipped {
		total += n
	}
	if total != r.Records {
		t.Fatalf("%d kept + skipped, but %d records", total, r.Records)
	}
	ids := map[string]bool{}
	for _, p := range r.Pairs {
		if strings.TrimSpace(p.Question) == "" || strings.TrimSpace(p.Answer) == "" {
			t.Fatalf("kept an empty pair %+v", p)
		}
		if ids[p.ID] {
			t.Fatalf("duplicate id %q kept", p.ID)
		}
		ids[p.ID] = true
	}
	for _, ex := range r.Examples {
		// an example without answers is an unanswerable question (SQuAD 2.0)
		if len(ex.Answers.Text) != len(ex.Answers.AnswerStart) {
			t.Fatalf("example %q: %d answer texts, %d starts", ex.ID, len(ex.Answers.Text), len(ex.Answers.AnswerStart))
		}
		if strings.TrimSpace(ex.Question) == "" || strings.TrimSpace(ex.Context) == "" {
			t.Fatalf("kept example %q with an empty question or context", ex.ID)
		}
		if err := ex.CheckAnswers(); err != nil {
			t.Fatalf("kept a misplaced answer: %v", err)
		}
		if ids[ex.ID] {
			t.Fatalf("duplicate id %q kept", ex.ID)
		}
		ids[ex.ID] = true
	}
	for _, ex := range BuildDataset(r, BuildOptions{}) {
		if err := ex.CheckAnswers(); err != nil {
			t.Fatalf("built a misplaced answer: %v", err)
		}
	}
}

func fuzzRead(f *testing.F, name, format string) {
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Read(data, name, format)
		if err != nil {
			if !strings.Contains(err.Error(), name) {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		checkReadResult(t, r)
	})
}

func FuzzReadQAText(f *testing.F)  { fuzzRead(f, "in.txt", FormatQAText) }
func FuzzReadCSV(f *testing.F)     { fuzzRead(f, "in.csv", FormatCSV) }
func FuzzReadTSV(f *testing.F)     { fuzzRead(f, "in.tsv", FormatTSV) }
func FuzzReadJSONL(f *testing.F)   { fuzzRead(f, "in.jsonl", FormatJSONL) }
func FuzzReadSQuAD(f *testing.F)   { fuzzRead(f, "in.json", FormatSQuAD) }
func FuzzReadHFJSONL(f *testing.F) { fuzzRead(f, "in.jsonl", FormatHFJSONL) }
func FuzzReadAuto(f *testing.F)    { fuzzRead(f, "input", FormatAuto) }

// FuzzTokenizerEncode: offsets lie inside the text, in order, and ids match tokens.
func FuzzTokenizerEncode(f *testing.F) {
	tok := tinyTokenizer(f)
	f.Fuzz(func(t *testing.T, text string) {
		enc, err := tok.Encode(text)
		if err != nil {
			t.Fatal(err)
		}
		n := utf8.RuneCountInString(text)
		prev := 0
		for i, o := range enc.Offsets {
			if o[0] < prev || o[1] <= o[0] || o[1] > n {
				t.Fatalf("token %d %q has offsets %v in a text of %d code points (previous start %d)", i, enc.Tokens[i], o, n, prev)
			}
			prev = o[0]
			if id, ok := tok.TokenToID(enc.Tokens[i]); !ok || id != enc.IDs[i] {
				t.Fatalf("token %q has id %d", enc.Tokens[i], enc.IDs[i])
			}
		}
	})
}
