package data

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type qa struct{ Q, A string }

func pairsOf(r *ReadResult) []qa {
	var out []qa
	for _, p := range r.Pairs {
		out = append(out, qa{p.Question, p.Answer})
	}
	return out
}

func TestReadPairs(t *testing.T) {
	tests := []struct {
		name, file, format, input string
		want                      []qa
		wantIDs                   []string
		skipped                   map[string]int
	}{
		{
			name: "qa-text blocks", file: "f.txt", format: FormatAuto,
			input: "Q: What is it?\nA: A thing\n\nQ: Who?\nA: Me\n",
			want:  []qa{{"What is it?", "A thing"}, {"Who?", "Me"}}, wantIDs: []string{"line-1", "line-4"},
		},
		{
			name: "qa-text long prefixes any case, CRLF, BOM, multi-line answer", file: "f", format: FormatQAText,
			input: "\ufeffQUESTION: First?\r\nanswer:  line one\r\nline two\r\n\r\nq : Second\r\ncontinued?\r\nA: x\r\n",
			want:  []qa{{"First?", "line one\nline two"}, {"Second continued?", "x"}},
		},
		{
			name: "qa-text answer ends at next question; two answers give two pairs", file: "f.txt", format: FormatQAText,
			input:   "Q: one\nA: 1\nQ: two\nA: 2\nA: deux\n",
			want:    []qa{{"one", "1"}, {"two", "2"}, {"two", "deux"}},
			wantIDs: []string{"line-1", "line-3", "line-3-2"},
		},
		{
			name: "qa-text empty and duplicate pairs skipped", file: "f.txt", format: FormatQAText,
			input:   "Q: a?\nA: x\n\nQ: a?\nA: x\n\nQ:\nA: y\n\nQ: b?\nA:\n\nQ: c?\n\nQ: d?\nA: z\n",
			want:    []qa{{"a?", "x"}, {"d?", "z"}},
			skipped: map[string]int{SkipDuplicate: 1, SkipEmptyQuestion: 1, SkipEmptyAnswer: 2},
		},
		{
			name: "csv quoted fields, embedded newline, BOM, extra columns, id column", file: "f.csv", format: FormatAuto,
			input: "\ufeffid,Question,context_unused,Answer\nk1,\"Why, then?\",z,\"Because\nof \"\"this\"\"\"\n,Plain,,Yes\n",
			want:  []qa{{"Why, then?", "Because\nof \"this\""}, {"Plain", "Yes"}}, wantIDs: []string{"k1", "line-4"},
		},
		{
			name: "tsv by extension", file: "f.tsv", format: FormatAuto,
			input:   "q\ta\nWhat \"is\" it?\tA \"thing\"\n\t\n",
			want:    []qa{{`What "is" it?`, `A "thing"`}},
			skipped: map[string]int{SkipEmptyQuestion: 1},
		},
		{
			name: "jsonl lines with number answer and id", file: "f.jsonl", format: FormatAuto,
			input: "{\"question\": \"Year?\", \"answer\": 2018, \"id\": \"y\"}\n\n{\"question\": \"Q2\", \"answer\": \"A2\", \"extra\": [1]}\n",
			want:  []qa{{"Year?", "2018"}, {"Q2", "A2"}}, wantIDs: []string{"y", "line-3"},
		},
		{
			name: "json array by content", file: "f.json", format: FormatAuto,
			input: `[{"question": "Q1", "answer": "A1"}, {"question": "Q1", "answer": "A1"}]`,
			want:  []qa{{"Q1", "A1"}}, wantIDs: []string{"item-0"},
			skipped: map[string]int{SkipDuplicate: 1},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Read([]byte(tc.input), tc.file, tc.format)
			require.NoError(t, err)
			assert.Equal(t, tc.want, pairsOf(r))
			if tc.wantIDs != nil {
				var ids []string
				for _, p := range r.Pairs {
					ids = append(ids, p.ID)
				}
				assert.Equal(t, tc.wantIDs, ids)
			}
			if tc.skipped == nil {
				assert.Empty(t, r.Skipped)
			} else {
				assert.Equal(t, tc.skipped, r.Skipped)
			}
			total := len(r.Pairs)
			for _, n := range r.Skipped {
				total += n
			}
			assert.Equal(t, r.Records, total, "every record is kept or skipped")
		})
	}
}

func TestReadWithContexts(t *testing.T) {
	squad := `{"version": "v2.0", "data": [{"title": "T", "paragraphs": [{"context": "Café costs €5 today.",
	  "qas": [
	    {"id": "a", "question": "Cost?", "answers": [{"text": "€5", "answer_start": 11}, {"text": "€5", "answer_start": 3}, {"text": "", "answer_start": 0}]},
	    {"id": "b", "question": "When?", "answers": [], "is_impossible": true, "plausible_answers": [{"text": "today", "answer_start": 14}]},
	    {"id": "a", "question": "Again?", "answers": [{"text": "today", "answer_start": 14}]},
	    {"id": "c", "question": "What?", "answers": [{"text": "Café", "answer_start": 1}]}
	  ]}]}]}`
	r, err := Read([]byte(squad), "s.json", FormatAuto)
	require.NoError(t, err)
	assert.Equal(t, FormatSQuAD, r.Format)
	require.Len(t, r.Examples, 2)
	assert.Equal(t, Example{ID: "a", Title: "T", Question: "Cost?", Context: "Café costs €5 today.",
		Answers: Answers{Text: []string{"€5"}, AnswerStart: []int{11}}}, r.Examples[0])
	assert.Equal(t, Example{ID: "b", Title: "T", Question: "When?", Context: "Café costs €5 today."}, r.Examples[1],
		"an unanswerable question is kept without answers (plausible_answers are not answers)")
	assert.Equal(t, 4, r.Records)
	assert.Equal(t, map[string]int{SkipDuplicateID: 1, SkipNoAnswer: 1}, r.Skipped)
	assert.Equal(t, map[string]int{DropMisplaced: 2, DropEmptyAnswer: 1}, r.DroppedAnswers)

	hf := "{\"id\": \"x\", \"question\": \"Q\", \"context\": \"naïve €5\", \"answers\": {\"text\": [\"€5\"], \"answer_start\": [6]}}\n" +
		"{\"id\": \"y\", \"question\": \"Q\", \"context\": \"abc\", \"answers\": [{\"text\": \"b\", \"answer_start\": 1}]}\n"
	r, err = Read([]byte(hf), "h.jsonl", FormatAuto)
	require.NoError(t, err)
	assert.Equal(t, FormatHFJSONL, r.Format)
	assert.Equal(t, []Example{
		{ID: "x", Question: "Q", Context: "naïve €5", Answers: Answers{Text: []string{"€5"}, AnswerStart: []int{6}}},
		{ID: "y", Question: "Q", Context: "abc", Answers: Answers{Text: []string{"b"}, AnswerStart: []int{1}}},
	}, r.Examples)
}

func TestDetectFormat(t *testing.T) {
	tests := []struct{ name, content, want string }{
		{"a.txt", "anything", FormatQAText},
		{"a.CSV", "x", FormatCSV},
		{"a.tsv", "x", FormatTSV},
		{"a.jsonl", `{"question": "q", "answer": "a"}`, FormatJSONL},
		{"a.ndjson", `{"id": "1", "context": "c", "answers": {}}`, FormatHFJSONL},
		{"a.json", `{"data": []}`, FormatSQuAD},
		{"a.json", `[{"question": "q", "answer": "a"}]`, FormatJSONL},
		{"noext", "\n  Question: x\nAnswer: y", FormatQAText},
		{"noext", "question\tanswer\n", FormatTSV},
		{"noext", "question,answer\n", FormatCSV},
		{"noext", `{"id": "1", "question": "q", "context": "c", "answers": {"text": [], "answer_start": []}}` + "\n{}", FormatHFJSONL},
		{"noext", "{\"question\": \"q\", \"answer\": \"a\"}\n{\"question\": \"q\", \"answer\": \"a\"}", FormatJSONL},
	}
	for _, tc := range tests {
		t.Run(tc.name+"/"+tc.want, func(t *testing.T) {
			got, err := DetectFormat(tc.name, []byte(tc.content))
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
	_, err := DetectFormat("noext", []byte("just words"))
	assert.ErrorContains(t, err, "noext: cannot detect the format")
	_, err = DetectFormat("noext", []byte(" \n"))
	assert.ErrorContains(t, err, "noext: empty input")
}

// TestReadMalformed: each malformed file gives an error naming the file and
// the line (or JSON path) — never a panic.
func TestReadMalformed(t *testing.T) {
	tests := []struct{ name, file, format, input, want string }{
		{"qa-text answer first", "f.txt", FormatQAText, "A: orphan\n", "f.txt:1: answer without a question"},
		{"qa-text stray line", "f.txt", FormatQAText, "Q: a\nA: b\n\nhello\n", "f.txt:4: expected a line starting with Q:"},
		{"qa-text answer after blank", "f.txt", FormatQAText, "Q: a\nA: b\n\nA: c\n", "f.txt:4: answer without a question"},
		{"invalid utf-8", "f.txt", FormatQAText, "Q: a\nA: \xff\n", "f.txt:2: invalid UTF-8"},
		{"unknown format", "f", "xml", "x", `f: unknown format "xml"`},
		{"csv no header columns", "f.csv", FormatCSV, "foo,bar\n1,2\n", "f.csv:1: the header must name a question column"},
		{"csv empty", "f.csv", FormatCSV, "", "f.csv: empty file"},
		{"csv short record", "f.csv", FormatCSV, "question,answer\nonly\n", "f.csv:2: record has 1 fields"},
		{"csv bad quote", "f.csv", FormatCSV, "question,answer\n\"open,x\n", "f.csv: parse error on line 2"},
		{"jsonl syntax", "f.jsonl", FormatJSONL, "{\"question\": \"q\", \"answer\": \"a\"}\n{\"question\": \n", "f.jsonl:2:14: invalid JSON"},
		{"jsonl missing field", "f.jsonl", FormatJSONL, "{\"question\": \"q\"}\n", "f.jsonl:1: $.answer: missing"},
		{"jsonl wrong type", "f.jsonl", FormatJSONL, "{\"question\": [1], \"answer\": \"a\"}\n", "f.jsonl:1: $.question: want a string, got an array"},
		{"jsonl not object", "f.jsonl", FormatJSONL, "[1]\n", "f.jsonl: $[0]: want an object, got a number"},
		{"jsonl trailing data", "f.jsonl", FormatJSONL, "{\"question\": \"q\", \"answer\": \"a\"} x\n", "f.jsonl:1:"},
		{"json array element", "f.json", FormatJSONL, `[{"question": "q", "answer": "a"}, {"question": "q", "answer": null}]`, "f.json: $[1].answer: want a string, got null"},
		{"squad syntax", "s.json", FormatSQuAD, "{\"data\": [\n  {\"title\": }\n]}", "s.json:2:13: invalid JSON"},
		{"squad truncated", "s.json", FormatSQuAD, "{\"data\": [", "s.json:1:11: invalid JSON"},
		{"squad no data", "s.json", FormatSQuAD, `{"version": "1.1"}`, "s.json: $.data: missing"},
		{"squad context type", "s.json", FormatSQuAD, `{"data": [{"paragraphs": [{"context": 3, "qas": []}]}]}`, "s.json: $.data[0].paragraphs[0].context: want a string, got a number"},
		{"squad answer_start type", "s.json", FormatSQuAD, `{"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "1", "question": "q", "answers": [{"text": "c", "answer_start": "0"}]}]}]}]}`, "s.json: $.data[0].paragraphs[0].qas[0].answers[0].answer_start: want an integer, got a string"},
		{"squad article not object", "s.json", FormatSQuAD, `{"data": [{"paragraphs": []}, 1]}`, "s.json: $.data[1]: want an object, got a number"},
		{"squad first error first", "s.json", FormatSQuAD, `{"data": [{"paragraphs": 2}, 1]}`, "s.json: $.data[0].paragraphs: want an array, got a number"},
		{"squad paragraph not object", "s.json", FormatSQuAD, `{"data": [{"paragraphs": [null]}]}`, "s.json: $.data[0].paragraphs[0]: want an object, got null"},
		{"squad qa not object", "s.json", FormatSQuAD, `{"data": [{"paragraphs": [{"context": "c", "qas": ["q"]}]}]}`, "s.json: $.data[0].paragraphs[0].qas[0]: want an object, got a string"},
		{"squad answer not object", "s.json", FormatSQuAD, `{"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "1", "question": "q", "answers": [1]}]}]}]}`, "s.json: $.data[0].paragraphs[0].qas[0].answers[0]: want an object, got a number"},
		{"squad fractional start", "s.json", FormatSQuAD, `{"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "1", "question": "q", "answers": [{"text": "c", "answer_start": 0.5}]}]}]}]}`, "answer_start: want an integer, got 0.5"},
		{"hf lengths differ", "h.jsonl", FormatHFJSONL, `{"id": "1", "question": "q", "context": "c", "answers": {"text": ["c"], "answer_start": []}}`, "h.jsonl:1: $.answers: 1 texts but 0 answer_start values"},
		{"hf missing context", "h.jsonl", FormatHFJSONL, `{"id": "1", "question": "q", "answers": {"text": [], "answer_start": []}}`, "h.jsonl:1: $.context: missing"},
		{"hf bad id", "h.jsonl", FormatHFJSONL, `{"id": true, "question": "q", "context": "c", "answers": {"text": [], "answer_start": []}}`, "h.jsonl:1: $.id: want a string, got a boolean"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Read([]byte(tc.input), tc.file, tc.format)
			require.Error(t, err, "result %+v", r)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "pairs.csv")
	require.NoError(t, os.WriteFile(p, []byte("question,answer\nq,a\n"), 0o644))
	r, err := ReadFile(p, "")
	require.NoError(t, err)
	assert.Equal(t, FormatCSV, r.Format)
	assert.Equal(t, []qa{{"q", "a"}}, pairsOf(r))
	_, err = ReadFile(filepath.Join(dir, "missing.txt"), FormatAuto)
	assert.ErrorContains(t, err, "missing.txt")
}

// readQATextFile reads path, detecting the qa-text format, and checks that
// it holds n records, all of them pairs, the first of them first.
func readQATextFile(t *testing.T, path string, n int, first qa) {
	t.Helper()
	r, err := ReadFile(path, FormatAuto)
	require.NoError(t, err)
	assert.Equal(t, FormatQAText, r.Format)
	assert.Equal(t, n, r.Records)
	require.Len(t, r.Pairs, n)
	assert.Equal(t, first, qa{r.Pairs[0].Question, r.Pairs[0].Answer})
}

// readSQuADFile reads path, detecting SQuAD JSON, checks that it holds n
// examples with none skipped and no answer dropped, and returns them.
func readSQuADFile(t *testing.T, path string, n int) []Example {
	t.Helper()
	r, err := ReadFile(path, FormatAuto)
	require.NoError(t, err)
	assert.Equal(t, FormatSQuAD, r.Format)
	assert.Len(t, r.Examples, n)
	assert.Empty(t, r.Skipped)
	assert.Empty(t, r.DroppedAnswers)
	return r.Examples
}

// TestReadSamples reads the committed samples: examples/sample-qa.txt and
// testdata/squad-sample.json (several answers a question, non-ASCII contexts).
// (The real files: TestRealDataReadFiles.)
func TestReadSamples(t *testing.T) {
	readQATextFile(t, sampleQA(t), 280, qa{"What was Arbor Lumen Holdings's total revenue in fiscal 2019?", "$4734.2 million"})

	answers, nonASCII := 0, 0
	for _, ex := range readSQuADFile(t, squadSample(t), 300) {
		require.NoError(t, ex.CheckAnswers())
		answers += len(ex.Answers.Text)
		if len([]rune(ex.Context)) != len(ex.Context) {
			nonASCII++
		}
	}
	assert.Equal(t, 700, answers, "3 answers to the 100 questions with a money answer, 2 to the others")
	assert.Equal(t, 300, nonASCII, "every context holds non-ASCII text, so offsets count code points")
}
