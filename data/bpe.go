package data

import (
	"container/heap"
	"fmt"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/sugarme/tokenizer/pretokenizer"
)

// The byte-level BPE of GPT-2 and RoBERTa, as HF tokenizers runs it with a
// ByteLevel pre-tokenizer (add_prefix_space false, use_regex true), a BPE
// model without dropout, and the offset trimming of RobertaProcessing.
//
// github.com/sugarme/tokenizer has these pieces, and loraqa uses its
// byte-to-character table; but its ByteLevel split regex leaves out GPT-2's
// two whitespace alternatives (so "\n" and runs of spaces are dropped, where
// HF makes them tokens), it computes offsets in bytes, and its BPE merge loop
// orders merges of equal rank by an (all-zero) timestamp instead of their
// position, so "aaa" may merge on the right. The split, the merge loop and
// the offsets are therefore written here, on code points.

// byteChars maps each byte to the character that stands for it in a
// byte-level vocabulary (GPT-2's bytes_to_unicode: printable Latin-1 bytes
// stand for themselves, the others for U+0100 onwards: ' ' is "Ġ", '\n' "Ċ").
var byteChars = func() (t [256]string) {
	for b, s := range pretokenizer.BytesChar {
		t[b] = s
	}
	return t
}()

// bpeSpace is the character of the byte ' ' ("Ġ").
var bpeSpace = byteChars[' ']

// splitByteLevel cuts text into the pieces GPT-2's pre-tokenization regex
//
//	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// matches, as code-point ranges [start, end) appended to out. The
// alternatives are tried in order at each position, as Oniguruma does.
func splitByteLevel(text []rune, out [][2]int) [][2]int {
	n := len(text)
	run := func(i int, in func(rune) bool) int {
		for i < n && in(text[i]) {
			i++
		}
		return i
	}
	for i := 0; i < n; {
		r := text[i]
		if r == '\'' && i+1 < n {
			if end := contraction(text[i+1:]); end > 0 {
				out = append(out, [2]int{i, i + 1 + end})
				i += 1 + end
				continue
			}
		}
		j := i
		if r == ' ' && i+1 < n {
			j = i + 1 // the optional leading space of the next three
		}
		if c := charClass(text[j]); c != classSpace {
			end := run(j, func(r rune) bool { return charClass(r) == c })
			out = append(out, [2]int{i, end})
			i = end
			continue
		}
		// r is whitespace (a lone ' ' before whitespace, or another one)
		end := run(i, unicode.IsSpace)
		if end < n && end-i > 1 {
			end-- // \s+(?!\S): leave the last one to the word after it
		}
		out = append(out, [2]int{i, end})
		i = end
	}
	return out
}

// contraction is the length of the contraction suffix (s, t, re, ve, m, ll,
// d) at the start of rest, 0 if there is none.
func contraction(rest []rune) int {
	switch rest[0] {
	case 's', 't', 'm', 'd':
		return 1
	case 'r', 'v':
		if len(rest) > 1 && rest[1] == 'e' {
			return 2
		}
	case 'l':
		if len(rest) > 1 && rest[1] == 'l' {
			return 2
		}
	}
	return 0
}

type charClassKind int

const (
	classSpace charClassKind = iota
	classLetter
	classNumber
	classOther
)

// charClass sorts a code point into the classes of the split regex: \s
// (Unicode White_Space, Go's unicode.IsSpace), \p{L}, \p{N}, and the rest.
func charClass(r rune) charClassKind {
	switch {
	case unicode.IsSpace(r):
		return classSpace
	case unicode.IsLetter(r):
		return classLetter
	case unicode.IsNumber(r):
		return classNumber
	}
	return classOther
}

// bpeModel is a BPE model over byte-level characters.
type bpeModel struct {
	vocab  map[string]int
	merges map[uint64]bpeMerge // (left id, right id) → rank and merged id
	unk    int                 // -1: none (unknown characters are dropped, as in HF)
	// ignoreMerges looks a whole word up in the vocabulary before merging.
	ignoreMerges bool
	byteIDs      [256]int // id of each byte's character, -1 when absent

	mu    sync.RWMutex
	cache map[string][]bpePiece
}

// bpeCacheSize bounds the word cache (HF's default is 10,000 words).
const bpeCacheSize = 1 << 16

type bpeMerge struct{ rank, id int }

// bpePiece is one token of a word: its id and its bytes [start, end) in the word.
type bpePiece struct{ id, start, end int }

func mergeKey(a, b int) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// newBPEModel checks the merges against the vocabulary as HF's BPE builder
// does: both sides and their concatenation must be tokens.
func newBPEModel(vocab map[string]int, merges [][2]string, unk string, ignoreMerges bool) (*bpeModel, error) {
	m := &bpeModel{vocab: vocab, merges: make(map[uint64]bpeMerge, len(merges)), unk: -1,
		ignoreMerges: ignoreMerges, cache: map[string][]bpePiece{}}
	if unk != "" {
		id, ok := vocab[unk]
		if !ok {
			return nil, fmt.Errorf("tokenizer: unk token %q is not in the vocabulary", unk)
		}
		m.unk = id
	}
	for rank, mg := range merges {
		a, okA := vocab[mg[0]]
		b, okB := vocab[mg[1]]
		id, okM := vocab[mg[0]+mg[1]]
		switch {
		case !okA || !okB:
			return nil, fmt.Errorf("tokenizer: merge %d (%q %q): a part is not in the vocabulary", rank+1, mg[0], mg[1])
		case !okM:
			return nil, fmt.Errorf("tokenizer: merge %d (%q %q): %q is not in the vocabulary", rank+1, mg[0], mg[1], mg[0]+mg[1])
		}
		if _, dup := m.merges[mergeKey(a, b)]; !dup {
			m.merges[mergeKey(a, b)] = bpeMerge{rank, id}
		}
	}
	for b, s := range byteChars {
		m.byteIDs[b] = -1
		if id, ok := vocab[s]; ok {
			m.byteIDs[b] = id
		}
	}
	return m, nil
}

// tokenize splits one pre-tokenized word (raw bytes) into pieces.
func (m *bpeModel) tokenize(word string) []bpePiece {
	m.mu.RLock()
	p, ok := m.cache[word]
	m.mu.RUnlock()
	if ok {
		return p
	}
	p = m.merge(word)
	m.mu.Lock()
	if len(m.cache) < bpeCacheSize {
		m.cache[word] = p
	}
	m.mu.Unlock()
	return p
}

// bpeSymbol is a symbol of a word being merged, in a linked list over the
// word's bytes.
type bpeSymbol struct {
	id, start, end int
	prev, next     int // -1 at the ends
	gone           bool
}

// mergeQueue is a min-heap of candidate merges by rank, then position.
type mergeQueue []mergeCand

type mergeCand struct{ rank, pos, id int }

func (q mergeQueue) Len() int { return len(q) }
func (q mergeQueue) Less(i, j int) bool {
	if q[i].rank != q[j].rank {
		return q[i].rank < q[j].rank
	}
	return q[i].pos < q[j].pos
}
func (q mergeQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *mergeQueue) Push(x any)   { *q = append(*q, x.(mergeCand)) }
func (q *mergeQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

// merge applies the merges to a word, lowest rank first and, among equal
// ranks, leftmost first (HF tokenizers' Word::merge_all without dropout).
func (m *bpeModel) merge(word string) []bpePiece {
	if m.ignoreMerges {
		if id, ok := m.vocab[bytesToChars(word)]; ok {
			return []bpePiece{{id, 0, len(word)}}
		}
	}
	syms := make([]bpeSymbol, 0, len(word))
	for i := 0; i < len(word); i++ {
		id := m.byteIDs[word[i]]
		if id < 0 {
			if m.unk < 0 {
				continue // HF drops a character it cannot map when there is no unk token
			}
			id = m.unk
		}
		syms = append(syms, bpeSymbol{id: id, start: i, end: i + 1, prev: len(syms) - 1, next: len(syms) + 1})
	}
	if len(syms) == 0 {
		return nil
	}
	syms[len(syms)-1].next = -1
	q := make(mergeQueue, 0, len(syms))
	for i := 0; i+1 < len(syms); i++ {
		if mg, ok := m.merges[mergeKey(syms[i].id, syms[i+1].id)]; ok {
			q = append(q, mergeCand{mg.rank, i, mg.id})
		}
	}
	heap.Init(&q)
	for q.Len() > 0 {
		c := heap.Pop(&q).(mergeCand)
		s := &syms[c.pos]
		if s.gone || s.next < 0 {
			continue
		}
		right := &syms[s.next]
		if mg, ok := m.merges[mergeKey(s.id, right.id)]; !ok || mg.id != c.id {
			continue // stale: one side was merged since
		}
		s.id, s.end, s.next = c.id, right.end, right.next
		right.gone = true
		if s.next >= 0 {
			syms[s.next].prev = c.pos
		}
		if s.prev >= 0 {
			if mg, ok := m.merges[mergeKey(syms[s.prev].id, s.id)]; ok {
				heap.Push(&q, mergeCand{mg.rank, s.prev, mg.id})
			}
		}
		if s.next >= 0 {
			if mg, ok := m.merges[mergeKey(s.id, syms[s.next].id)]; ok {
				heap.Push(&q, mergeCand{mg.rank, c.pos, mg.id})
			}
		}
	}
	var out []bpePiece
	for i := 0; i >= 0; i = syms[i].next {
		out = append(out, bpePiece{syms[i].id, syms[i].start, syms[i].end})
	}
	return out
}

// bytesToChars is a byte string in byte-level characters ("Ġworld").
func bytesToChars(s string) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		b = append(b, byteChars[s[i]]...)
	}
	return string(b)
}

// encodeByteLevel tokenizes one segment of text (no added tokens in it)
// whose first code point is at offset base, appending to enc. Offsets are
// code points; a token that holds part of a character's bytes spans the
// whole character; leading and trailing spaces of a token ("Ġ") are trimmed
// from its offsets (RobertaProcessing with trim_offsets), so a token of
// spaces alone has an empty span at its end.
func (t *Tokenizer) encodeByteLevel(enc *Encoding, seg []rune, base int, words [][2]int, buf []byte, runeOf []int) ([][2]int, []byte, []int) {
	words = splitByteLevel(seg, words[:0])
	for _, w := range words {
		buf, runeOf = buf[:0], runeOf[:0]
		for k := w[0]; k < w[1]; k++ {
			buf = utf8.AppendRune(buf, seg[k])
			for len(runeOf) < len(buf) {
				runeOf = append(runeOf, base+k)
			}
		}
		for _, p := range t.bpe.tokenize(string(buf)) {
			start, end := runeOf[p.start], runeOf[p.end-1]+1
			lead, trail := 0, 0
			for lead < p.end-p.start && buf[p.start+lead] == ' ' {
				lead++
			}
			for trail < p.end-p.start && buf[p.end-1-trail] == ' ' {
				trail++
			}
			if lead > 0 {
				start = min(start+lead, end)
			}
			if trail > 0 && end >= trail {
				end = max(end-trail, start)
			}
			enc.add(int64(p.id), t.inv[p.id], start, end)
		}
	}
	return words, buf, runeOf
}
