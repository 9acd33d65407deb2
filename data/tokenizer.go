package data

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/sugarme/tokenizer/model"
	"github.com/sugarme/tokenizer/model/wordpiece"
)

// TokenizerOptions configures a BERT WordPiece tokenizer. The zero value is
// not useful; start from DefaultTokenizerOptions.
type TokenizerOptions struct {
	Lowercase          bool
	StripAccents       *bool // nil: strip accents when lower-casing (HF's default)
	HandleChineseChars bool
	CleanText          bool

	UnkToken, ClsToken, SepToken, PadToken, MaskToken string
	ContinuingSubwordPrefix                           string
	MaxInputCharsPerWord                              int

	// AddedTokens are matched verbatim in the raw text before normalization
	// and become single tokens (HF's added tokens with normalized=false). The
	// special tokens above are always among them.
	AddedTokens []string

	// ModelMaxLength is the longest sequence the model takes (0: unknown).
	ModelMaxLength int
}

// DefaultTokenizerOptions are those of BertTokenizerFast for an uncased model.
func DefaultTokenizerOptions() TokenizerOptions {
	return TokenizerOptions{
		Lowercase: true, HandleChineseChars: true, CleanText: true,
		UnkToken: "[UNK]", ClsToken: "[CLS]", SepToken: "[SEP]", PadToken: "[PAD]", MaskToken: "[MASK]",
		ContinuingSubwordPrefix: "##", MaxInputCharsPerWord: 100,
	}
}

// Tokenizer is a BERT WordPiece tokenizer that gives the ids and offsets of
// HF's BertTokenizerFast. Normalization and pre-tokenization are done here on
// code points (so offsets are code points, as in Python); the WordPiece step
// is github.com/sugarme/tokenizer's.
type Tokenizer struct {
	wp     wordpiece.WordPiece
	vocab  map[string]int
	inv    []string
	norm   bertNormalizer
	added  []addedToken // longest first
	cls    int64
	sep    int64
	pad    int64
	unk    int64
	maxLen int
}

type addedToken struct {
	content string
	id      int64
}

// Encoding is the tokenization of one text, without special tokens.
type Encoding struct {
	IDs    []int64
	Tokens []string
	// Offsets are [start, end) code-point offsets into the text.
	Offsets [][2]int
}

// NewTokenizer builds a tokenizer from a vocabulary (token → id).
func NewTokenizer(vocab map[string]int, opts TokenizerOptions) (*Tokenizer, error) {
	t := &Tokenizer{vocab: vocab, maxLen: opts.ModelMaxLength}
	t.norm = bertNormalizer{
		cleanText: opts.CleanText, handleChinese: opts.HandleChineseChars,
		stripAccents: opts.Lowercase, lowercase: opts.Lowercase,
	}
	if opts.StripAccents != nil {
		t.norm.stripAccents = *opts.StripAccents
	}
	maxID := -1
	for _, id := range vocab {
		if id < 0 {
			return nil, fmt.Errorf("tokenizer: negative id %d in the vocabulary", id)
		}
		maxID = max(maxID, id)
	}
	if maxID >= 2*len(vocab)+1024 {
		return nil, fmt.Errorf("tokenizer: ids run up to %d for %d tokens; a vocabulary's ids must be dense", maxID, len(vocab))
	}
	t.inv = make([]string, maxID+1)
	for tok, id := range vocab {
		t.inv[id] = tok
	}
	lookup := func(role, tok string) (int64, error) {
		id, ok := vocab[tok]
		if !ok {
			return 0, fmt.Errorf("tokenizer: %s token %q is not in the vocabulary", role, tok)
		}
		return int64(id), nil
	}
	var err error
	if t.unk, err = lookup("unk", opts.UnkToken); err != nil {
		return nil, err
	}
	if t.cls, err = lookup("cls", opts.ClsToken); err != nil {
		return nil, err
	}
	if t.sep, err = lookup("sep", opts.SepToken); err != nil {
		return nil, err
	}
	if t.pad, err = lookup("pad", opts.PadToken); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, tok := range append([]string{opts.UnkToken, opts.ClsToken, opts.SepToken, opts.PadToken, opts.MaskToken}, opts.AddedTokens...) {
		id, ok := vocab[tok]
		if tok == "" || seen[tok] || !ok {
			continue
		}
		seen[tok] = true
		t.added = append(t.added, addedToken{tok, int64(id)})
	}
	sort.SliceStable(t.added, func(i, j int) bool { return len(t.added[i].content) > len(t.added[j].content) })
	if opts.MaxInputCharsPerWord <= 0 {
		return nil, fmt.Errorf("tokenizer: max_input_chars_per_word must be positive, got %d", opts.MaxInputCharsPerWord)
	}
	v := model.Vocab(vocab)
	t.wp = wordpiece.NewWordPieceBuilder().Vocab(&v).UnkToken(opts.UnkToken).
		ContinuingSubwordPrefix(opts.ContinuingSubwordPrefix).MaxInputCharsPerWord(opts.MaxInputCharsPerWord).Build()
	return t, nil
}

// CLS is the id of the classifier token that starts every feature.
func (t *Tokenizer) CLS() int64 { return t.cls }

// SEP is the id of the separator token.
func (t *Tokenizer) SEP() int64 { return t.sep }

// VocabSize is one more than the largest id.
func (t *Tokenizer) VocabSize() int { return len(t.inv) }

// ModelMaxLength is the longest sequence the model takes (0: unknown).
func (t *Tokenizer) ModelMaxLength() int { return t.maxLen }

// Encode tokenizes text without adding special tokens.
func (t *Tokenizer) Encode(text string) (*Encoding, error) {
	enc := &Encoding{IDs: []int64{}, Tokens: []string{}, Offsets: [][2]int{}}
	runes := []rune(text)
	var chars []normChar
	var words [][2]int
	pos, runePos := 0, 0 // byte and code-point position in text
	for pos <= len(text) {
		at, tok := t.nextAdded(text, pos)
		end := len(text)
		if tok != nil {
			end = at
		}
		segRunes := utf8.RuneCountInString(text[pos:end])
		chars = t.norm.normalize(runes[runePos:runePos+segRunes], runePos, chars[:0])
		words = preTokenize(chars, words[:0])
		for _, w := range words {
			if err := t.wordPiece(enc, chars[w[0]:w[1]]); err != nil {
				return nil, err
			}
		}
		runePos += segRunes
		if tok == nil {
			break
		}
		n := utf8.RuneCountInString(tok.content)
		enc.add(tok.id, tok.content, runePos, runePos+n)
		runePos += n
		pos = end + len(tok.content)
	}
	return enc, nil
}

// nextAdded finds the leftmost added token at or after byte pos (the longest
// one where several start there).
func (t *Tokenizer) nextAdded(text string, pos int) (int, *addedToken) {
	best, bestAt := -1, -1
	for i, a := range t.added {
		j := strings.Index(text[pos:], a.content)
		if j >= 0 && (bestAt < 0 || pos+j < bestAt) {
			best, bestAt = i, pos+j
		}
	}
	if best < 0 {
		return -1, nil
	}
	return bestAt, &t.added[best]
}

func (t *Tokenizer) wordPiece(enc *Encoding, word []normChar) error {
	rs := make([]rune, len(word))
	for i, c := range word {
		rs[i] = c.r
	}
	toks, err := t.wp.Tokenize(string(rs))
	if err != nil {
		return fmt.Errorf("tokenizer: %w", err)
	}
	for _, tk := range toks {
		s, e := tk.Offsets[0], tk.Offsets[1]
		enc.add(int64(tk.Id), tk.Value, word[s].src, word[e-1].src+1)
	}
	return nil
}

func (e *Encoding) add(id int64, tok string, start, end int) {
	e.IDs = append(e.IDs, id)
	e.Tokens = append(e.Tokens, tok)
	e.Offsets = append(e.Offsets, [2]int{start, end})
}
