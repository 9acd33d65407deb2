package data

import (
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// bertNormalizer is the BERT normalizer of HF tokenizers (BertNormalizer):
// clean text, space out CJK characters, strip accents, lower-case, in that
// order. It works on code points and remembers, for each output character,
// the code point of the input it came from, so offsets need no byte
// conversion.
type bertNormalizer struct {
	cleanText     bool
	handleChinese bool
	stripAccents  bool
	lowercase     bool
}

// normChar is one normalized character and the index of the input code point
// it came from.
type normChar struct {
	r   rune
	src int
}

// normalize appends the normalized form of runes (whose first code point has
// index base in the whole text) to out.
func (n bertNormalizer) normalize(runes []rune, base int, out []normChar) []normChar {
	var decomp [32]byte
	for i, r := range runes {
		src := base + i
		if n.cleanText {
			if r == 0 || r == 0xfffd || isBertControl(r) {
				continue
			}
			if isBertWhitespace(r) {
				r = ' '
			}
		}
		if n.handleChinese && isCJK(r) {
			out = append(out, normChar{' ', src}, normChar{r, src}, normChar{' ', src})
			continue
		}
		if n.stripAccents && r >= 0x80 {
			d := norm.NFD.AppendString(decomp[:0], string(r))
			for _, dr := range string(d) {
				if unicode.Is(unicode.Mn, dr) {
					continue
				}
				out = n.lower(out, dr, src)
			}
			continue
		}
		out = n.lower(out, r, src)
	}
	return out
}

func (n bertNormalizer) lower(out []normChar, r rune, src int) []normChar {
	if !n.lowercase {
		return append(out, normChar{r, src})
	}
	if r == 'İ' { // the one code point whose full lower case is two (Rust's char::to_lowercase)
		return append(out, normChar{'i', src}, normChar{'\u0307', src})
	}
	return append(out, normChar{unicode.ToLower(r), src})
}

// isBertControl: control (Cc), format (Cf) and private-use (Co) characters,
// except tab, newline and carriage return, which count as whitespace.
func isBertControl(r rune) bool {
	switch r {
	case '\t', '\n', '\r':
		return false
	}
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co)
}

// isBertWhitespace is Unicode White_Space (Rust's char::is_whitespace).
func isBertWhitespace(r rune) bool {
	return unicode.IsSpace(r)
}

// isBertPunctuation: ASCII punctuation and symbols, and Unicode punctuation (P*).
func isBertPunctuation(r rune) bool {
	if r < 0x80 {
		return (r >= 33 && r <= 47) || (r >= 58 && r <= 64) || (r >= 91 && r <= 96) || (r >= 123 && r <= 126)
	}
	return unicode.IsPunct(r)
}

// isCJK is the "Chinese character" test of HF tokenizers' BertNormalizer
// (its ranges, including 0x2B920 where the original BERT has 0x2B820).
func isCJK(r rune) bool {
	switch {
	case r >= 0x4E00 && r <= 0x9FFF,
		r >= 0x3400 && r <= 0x4DBF,
		r >= 0x20000 && r <= 0x2A6DF,
		r >= 0x2A700 && r <= 0x2B73F,
		r >= 0x2B740 && r <= 0x2B81F,
		r >= 0x2B920 && r <= 0x2CEAF,
		r >= 0xF900 && r <= 0xFAFF,
		r >= 0x2F800 && r <= 0x2FA1F:
		return true
	}
	return false
}

// preTokenize splits normalized text as BertPreTokenizer does: on whitespace
// (dropped) and around each punctuation character (kept as its own word). It
// returns [start, end) index ranges into chars.
func preTokenize(chars []normChar, words [][2]int) [][2]int {
	start := -1
	for i, c := range chars {
		switch {
		case isBertWhitespace(c.r):
			if start >= 0 {
				words = append(words, [2]int{start, i})
				start = -1
			}
		case isBertPunctuation(c.r):
			if start >= 0 {
				words = append(words, [2]int{start, i})
				start = -1
			}
			words = append(words, [2]int{i, i + 1})
		default:
			if start < 0 {
				start = i
			}
		}
	}
	if start >= 0 {
		words = append(words, [2]int{start, len(chars)})
	}
	return words
}
