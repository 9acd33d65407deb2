package data

import (
	"fmt"
	"sort"
	"strings"
	"unicode"
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

// TokenizerKind names the tokenization algorithm of a Tokenizer, and with it
// how a question and a context are put together.
type TokenizerKind string

// Tokenizer kinds.
const (
	// WordPiece is BERT's and DistilBERT's: [CLS] q [SEP] c [SEP], token
	// type ids 0 for the question and 1 for the context.
	WordPiece TokenizerKind = "wordpiece"
	// ByteLevelBPE is RoBERTa's (GPT-2's byte-level BPE): <s> q </s></s> c
	// </s>, no token type ids (all 0).
	ByteLevelBPE TokenizerKind = "byte-level-bpe"
)

// Tokenizer gives the ids and code-point offsets of HF's fast tokenizers:
// BERT WordPiece (BertTokenizerFast; NewTokenizer) or RoBERTa's byte-level
// BPE (RobertaTokenizerFast; NewRobertaTokenizer). Normalization and
// pre-tokenization are done here on code points (so offsets are code
// points, as in Python); the WordPiece step is github.com/sugarme/tokenizer's.
type Tokenizer struct {
	kind   TokenizerKind
	wp     wordpiece.WordPiece
	bpe    *bpeModel // ByteLevelBPE only
	vocab  map[string]int
	inv    []string
	norm   bertNormalizer
	added  []addedToken // longest first
	cls    int64
	sep    int64
	pad    int64
	unk    int64 // -1: none (a byte-level BPE needs none)
	maxLen int
}

type addedToken struct {
	content string
	id      int64
	// lstrip and rstrip swallow the whitespace before and after the token
	// (HF's AddedToken lstrip/rstrip); it makes no token.
	lstrip, rstrip bool
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
	t := &Tokenizer{kind: WordPiece, vocab: vocab, maxLen: opts.ModelMaxLength}
	t.norm = bertNormalizer{
		cleanText: opts.CleanText, handleChinese: opts.HandleChineseChars,
		stripAccents: opts.Lowercase, lowercase: opts.Lowercase,
	}
	if opts.StripAccents != nil {
		t.norm.stripAccents = *opts.StripAccents
	}
	var err error
	if t.inv, err = invertVocab(vocab); err != nil {
		return nil, err
	}
	lookup := func(role, tok string) (int64, error) { return lookupToken(vocab, role, tok) }
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
	var added []AddedToken
	for _, tok := range append([]string{opts.UnkToken, opts.ClsToken, opts.SepToken, opts.PadToken, opts.MaskToken}, opts.AddedTokens...) {
		added = append(added, AddedToken{Content: tok})
	}
	t.added = addedTokens(vocab, added)
	if opts.MaxInputCharsPerWord <= 0 {
		return nil, fmt.Errorf("tokenizer: max_input_chars_per_word must be positive, got %d", opts.MaxInputCharsPerWord)
	}
	v := model.Vocab(vocab)
	t.wp = wordpiece.NewWordPieceBuilder().Vocab(&v).UnkToken(opts.UnkToken).
		ContinuingSubwordPrefix(opts.ContinuingSubwordPrefix).MaxInputCharsPerWord(opts.MaxInputCharsPerWord).Build()
	return t, nil
}

// invertVocab lists the tokens by id; the ids must be dense enough.
func invertVocab(vocab map[string]int) ([]string, error) {
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
	inv := make([]string, maxID+1)
	for tok, id := range vocab {
		inv[id] = tok
	}
	return inv, nil
}

func lookupToken(vocab map[string]int, role, tok string) (int64, error) {
	id, ok := vocab[tok]
	if !ok {
		return 0, fmt.Errorf("tokenizer: %s token %q is not in the vocabulary", role, tok)
	}
	return int64(id), nil
}

// addedTokens keeps the first of each content that is in the vocabulary,
// longest first (HF matches the leftmost, then longest, added token).
func addedTokens(vocab map[string]int, tokens []AddedToken) []addedToken {
	var out []addedToken
	seen := map[string]bool{}
	for _, a := range tokens {
		id, ok := vocab[a.Content]
		if a.Content == "" || seen[a.Content] || !ok {
			continue
		}
		seen[a.Content] = true
		out = append(out, addedToken{a.Content, int64(id), a.LStrip, a.RStrip})
	}
	sort.SliceStable(out, func(i, j int) bool { return len(out[i].content) > len(out[j].content) })
	return out
}

// Kind is the tokenization algorithm: WordPiece (BERT) or ByteLevelBPE (RoBERTa).
func (t *Tokenizer) Kind() TokenizerKind { return t.kind }

// TokenTypes reports whether features carry token type ids that tell the
// question from the context (BERT); RoBERTa's are all 0.
func (t *Tokenizer) TokenTypes() bool { return t.kind == WordPiece }

// PairSpecialTokens is the number of special tokens around a question and a
// context: 3 for BERT, 4 for RoBERTa.
func (t *Tokenizer) PairSpecialTokens() int {
	if t.kind == ByteLevelBPE {
		return 4
	}
	return 3
}

// CLS is the id of the classifier token that starts every feature ([CLS],
// or <s> for RoBERTa).
func (t *Tokenizer) CLS() int64 { return t.cls }

// SEP is the id of the separator token ([SEP], or </s> for RoBERTa).
func (t *Tokenizer) SEP() int64 { return t.sep }

// VocabSize is one more than the largest id.
func (t *Tokenizer) VocabSize() int { return len(t.inv) }

// ModelMaxLength is the longest sequence the model takes (0: unknown).
func (t *Tokenizer) ModelMaxLength() int { return t.maxLen }

// Encode tokenizes text without adding special tokens.
func (t *Tokenizer) Encode(text string) (*Encoding, error) {
	enc := &Encoding{IDs: []int64{}, Tokens: []string{}, Offsets: [][2]int{}}
	runes := []rune(text)
	var (
		chars  []normChar
		words  [][2]int
		buf    []byte
		runeOf []int
	)
	pos, runePos := 0, 0 // byte and code-point position in text
	for pos <= len(text) {
		at, tok := t.nextAdded(text, pos)
		end, next := len(text), len(text)
		if tok != nil {
			end, next = at, at+len(tok.content)
			if tok.lstrip {
				end = pos + len(strings.TrimRightFunc(text[pos:end], unicode.IsSpace))
			}
		}
		segRunes := utf8.RuneCountInString(text[pos:end])
		seg := runes[runePos : runePos+segRunes]
		if t.bpe != nil {
			words, buf, runeOf = t.encodeByteLevel(enc, seg, runePos, words, buf, runeOf)
		} else {
			chars = t.norm.normalize(seg, runePos, chars[:0])
			words = preTokenize(chars, words[:0])
			for _, w := range words {
				if err := t.wordPiece(enc, chars[w[0]:w[1]]); err != nil {
					return nil, err
				}
			}
		}
		if tok == nil {
			break
		}
		runePos += utf8.RuneCountInString(text[pos:at])
		n := utf8.RuneCountInString(tok.content)
		enc.add(tok.id, tok.content, runePos, runePos+n)
		runePos += n
		if tok.rstrip {
			rest := strings.TrimLeftFunc(text[next:], unicode.IsSpace)
			runePos += utf8.RuneCountInString(text[next : len(text)-len(rest)])
			next = len(text) - len(rest)
		}
		pos = next
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
