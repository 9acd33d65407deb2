package data

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Input formats accepted by ReadFile and Read.
const (
	FormatAuto    = "auto"     // by extension, then by content
	FormatQAText  = "qa-text"  // blocks of Q:/A: lines
	FormatCSV     = "csv"      // comma-separated, header names the question and answer columns
	FormatTSV     = "tsv"      // tab-separated, same header rule
	FormatJSONL   = "jsonl"    // one {question, answer} object per line, or a JSON array of them
	FormatSQuAD   = "squad"    // SQuAD v1.1 / v2.0 JSON
	FormatHFJSONL = "hf-jsonl" // HF QA records {id, question, context, answers}
)

// Formats lists the format names ReadFile accepts.
var Formats = []string{FormatAuto, FormatQAText, FormatCSV, FormatTSV, FormatJSONL, FormatSQuAD, FormatHFJSONL}

// Reasons for skipping a record or dropping one answer of a record.
const (
	SkipEmptyQuestion = "empty question"
	SkipEmptyAnswer   = "empty answer"
	SkipDuplicate     = "duplicate pair"
	SkipDuplicateID   = "duplicate id"
	SkipNoAnswer      = "no usable answer"
	DropMisplaced     = "answer not at answer_start"
	DropEmptyAnswer   = "empty answer text"
)

// ReadResult is what a reader found in one file.
type ReadResult struct {
	Path   string
	Format string // the format actually used (never "auto")
	// Records counts the question/answer records seen, kept or not.
	Records int
	// Pairs holds the kept Q&A pairs of files without contexts
	// (qa-text, csv, tsv, jsonl); Examples those of files with contexts
	// (squad, hf-jsonl).
	Pairs    []Pair
	Examples []Example
	// Skipped counts skipped records by reason; DroppedAnswers counts single
	// answers removed from records (a record left with none is skipped).
	Skipped        map[string]int
	DroppedAnswers map[string]int
}

// Kept is the number of records kept.
func (r *ReadResult) Kept() int { return len(r.Pairs) + len(r.Examples) }

func (r *ReadResult) skip(reason string) {
	if r.Skipped == nil {
		r.Skipped = map[string]int{}
	}
	r.Skipped[reason]++
}

func (r *ReadResult) drop(reason string) {
	if r.DroppedAnswers == nil {
		r.DroppedAnswers = map[string]int{}
	}
	r.DroppedAnswers[reason]++
}

// ReadFile reads path in the given format (see Formats; "" means auto).
func ReadFile(path, format string) (*ReadResult, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read input: %w", err)
	}
	return Read(b, path, format)
}

// Read parses data in the given format; name is used in error messages and to
// detect the format by extension.
func Read(data []byte, name, format string) (*ReadResult, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if format == "" || format == FormatAuto {
		f, err := DetectFormat(name, data)
		if err != nil {
			return nil, err
		}
		format = f
	}
	if !utf8.Valid(data) {
		line := 1 + bytes.Count(data[:firstInvalidUTF8(data)], []byte("\n"))
		return nil, fmt.Errorf("%s:%d: invalid UTF-8", name, line)
	}
	r := &ReadResult{Path: name, Format: format}
	var err error
	switch format {
	case FormatQAText:
		err = readQAText(data, name, r)
	case FormatCSV:
		err = readCSV(data, name, ',', r)
	case FormatTSV:
		err = readCSV(data, name, '\t', r)
	case FormatJSONL:
		err = readJSONL(data, name, r)
	case FormatSQuAD:
		err = readSQuAD(data, name, r)
	case FormatHFJSONL:
		err = readHFJSONL(data, name, r)
	default:
		return nil, fmt.Errorf("%s: unknown format %q (want one of %s)", name, format, strings.Join(Formats, ", "))
	}
	if err != nil {
		return nil, err
	}
	return r, nil
}

func firstInvalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return len(b)
}

var qaTextStart = regexp.MustCompile(`^(?i:q|question)\s*:`)

// DetectFormat picks a format by the extension of name, then by content.
func DetectFormat(name string, data []byte) (string, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	switch strings.ToLower(filepath.Ext(name)) {
	case ".txt":
		return FormatQAText, nil
	case ".csv":
		return FormatCSV, nil
	case ".tsv", ".tab":
		return FormatTSV, nil
	case ".jsonl", ".ndjson":
		if isHFRecord(firstLine(data)) {
			return FormatHFJSONL, nil
		}
		return FormatJSONL, nil
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 {
		return "", fmt.Errorf("%s: empty input, cannot detect its format", name)
	}
	switch trimmed[0] {
	case '[':
		return FormatJSONL, nil
	case '{':
		var top map[string]json.RawMessage
		if json.Unmarshal(trimmed, &top) == nil {
			if _, ok := top["data"]; ok {
				return FormatSQuAD, nil
			}
		}
		if isHFRecord(firstLine(trimmed)) {
			return FormatHFJSONL, nil
		}
		return FormatJSONL, nil
	}
	line := firstLine(trimmed)
	switch {
	case qaTextStart.Match(bytes.TrimSpace(line)):
		return FormatQAText, nil
	case bytes.ContainsRune(line, '\t'):
		return FormatTSV, nil
	case bytes.ContainsRune(line, ','):
		return FormatCSV, nil
	}
	return "", fmt.Errorf("%s: cannot detect the format (use one of %s)", name, strings.Join(Formats[1:], ", "))
}

func firstLine(data []byte) []byte {
	data = bytes.TrimLeft(data, " \t\r\n")
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return data[:i]
	}
	return data
}

// isHFRecord reports whether line is a JSON object with context and answers.
func isHFRecord(line []byte) bool {
	var obj map[string]json.RawMessage
	if json.Unmarshal(line, &obj) != nil {
		return false
	}
	_, c := obj["context"]
	_, a := obj["answers"]
	return c && a
}

// pairSet keeps Q&A pairs, skipping empty and duplicate ones.
type pairSet struct {
	r    *ReadResult
	seen map[[2]string]bool
	ids  map[string]bool
}

func newPairSet(r *ReadResult) *pairSet {
	return &pairSet{r: r, seen: map[[2]string]bool{}, ids: map[string]bool{}}
}

func (s *pairSet) add(p Pair) {
	s.r.Records++
	p.Question = strings.TrimSpace(p.Question)
	p.Answer = strings.TrimSpace(p.Answer)
	switch key := [2]string{p.Question, p.Answer}; {
	case p.Question == "":
		s.r.skip(SkipEmptyQuestion)
	case p.Answer == "":
		s.r.skip(SkipEmptyAnswer)
	case s.seen[key]:
		s.r.skip(SkipDuplicate)
	case s.ids[p.ID]:
		s.r.skip(SkipDuplicateID)
	default:
		s.seen[key] = true
		s.ids[p.ID] = true
		s.r.Pairs = append(s.r.Pairs, p)
	}
}
