package data

import (
	"strings"
	"unicode/utf8"
)

// DefaultSeparator joins the answers into the shared context.
const DefaultSeparator = " "

// BuildOptions configures BuildDataset.
type BuildOptions struct {
	// Separator joins the answers of context-free pairs into one context;
	// "" means DefaultSeparator.
	Separator string
}

// BuildDataset turns what a reader found into examples. Records that have a
// context keep it. Q&A pairs without contexts share ONE context made by
// joining all their answers with the separator, as the reference does; each
// answer's answer_start is the code-point offset of its own place in that
// context, so two equal answers never both point at the first.
func BuildDataset(r *ReadResult, opts BuildOptions) []Example {
	out := append([]Example(nil), r.Examples...)
	if len(r.Pairs) == 0 {
		return out
	}
	sep := opts.Separator
	if sep == "" {
		sep = DefaultSeparator
	}
	sepLen := utf8.RuneCountInString(sep)
	starts := make([]int, len(r.Pairs))
	var b strings.Builder
	offset := 0
	for i, p := range r.Pairs {
		if i > 0 {
			b.WriteString(sep)
			offset += sepLen
		}
		starts[i] = offset
		b.WriteString(p.Answer)
		offset += utf8.RuneCountInString(p.Answer)
	}
	context := b.String()
	for i, p := range r.Pairs {
		out = append(out, Example{
			ID:       p.ID,
			Question: p.Question,
			Context:  context,
			Answers:  Answers{Text: []string{p.Answer}, AnswerStart: []int{starts[i]}},
		})
	}
	return out
}

// CountContexts is the number of distinct contexts among examples.
func CountContexts(examples []Example) int {
	seen := map[string]bool{}
	for _, e := range examples {
		seen[e.Context] = true
	}
	return len(seen)
}
