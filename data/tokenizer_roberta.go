package data

import "fmt"

// AddedToken is a token matched verbatim in the raw text before
// pre-tokenization (HF's AddedToken). LStrip and RStrip swallow the
// whitespace before and after it (RoBERTa's <mask> has LStrip in the hub's
// tokenizer.json).
type AddedToken struct {
	Content        string
	LStrip, RStrip bool
}

// RobertaOptions configures a byte-level BPE tokenizer (RoBERTa). The zero
// value is not useful; start from DefaultRobertaOptions.
type RobertaOptions struct {
	// UnkToken is the token for a byte without a vocabulary entry (a
	// byte-level vocabulary has them all). It need not be in the vocabulary
	// when UnkForBytes is false.
	UnkToken                                string
	ClsToken, SepToken, PadToken, MaskToken string
	// UnkForBytes maps a byte missing from the vocabulary to UnkToken (HF's
	// BPE unk_token); false drops it, as HF's RoBERTa BPE (unk_token null) does.
	UnkForBytes bool
	// IgnoreMerges takes a whole pre-tokenized word from the vocabulary when
	// it is there, before merging (HF's BPE ignore_merges).
	IgnoreMerges bool
	// AddedTokens are matched verbatim in the raw text and become single
	// tokens. The special tokens above are added when missing, without
	// LStrip/RStrip.
	AddedTokens []AddedToken
	// ModelMaxLength is the longest sequence the model takes (0: unknown).
	ModelMaxLength int
}

// DefaultRobertaOptions are those of RobertaTokenizerFast built from
// vocab.json and merges.txt alone (transformers 5: no lstrip on <mask>;
// add_prefix_space false, trim_offsets true, the only settings supported).
func DefaultRobertaOptions() RobertaOptions {
	return RobertaOptions{UnkToken: "<unk>", ClsToken: "<s>", SepToken: "</s>", PadToken: "<pad>", MaskToken: "<mask>"}
}

// NewRobertaTokenizer builds RoBERTa's byte-level BPE tokenizer from a
// vocabulary (vocab.json: token → id) and its merges in rank order
// (merges.txt without its #version line). It gives the ids and code-point
// offsets of HF's RobertaTokenizerFast (add_prefix_space false,
// trim_offsets true): a token's leading space ("Ġ") is not part of its
// offsets, and a token holding part of a character's UTF-8 bytes spans the
// whole character.
func NewRobertaTokenizer(vocab map[string]int, merges [][2]string, opts RobertaOptions) (*Tokenizer, error) {
	t := &Tokenizer{kind: ByteLevelBPE, vocab: vocab, maxLen: opts.ModelMaxLength, unk: -1}
	var err error
	if t.inv, err = invertVocab(vocab); err != nil {
		return nil, err
	}
	if t.cls, err = lookupToken(vocab, "cls", opts.ClsToken); err != nil {
		return nil, err
	}
	if t.sep, err = lookupToken(vocab, "sep", opts.SepToken); err != nil {
		return nil, err
	}
	if t.pad, err = lookupToken(vocab, "pad", opts.PadToken); err != nil {
		return nil, err
	}
	if id, ok := vocab[opts.UnkToken]; ok {
		t.unk = int64(id)
	}
	unk := ""
	if opts.UnkForBytes {
		unk = opts.UnkToken
	}
	if t.bpe, err = newBPEModel(vocab, merges, unk, opts.IgnoreMerges); err != nil {
		return nil, err
	}
	for b, id := range t.bpe.byteIDs {
		if id < 0 && !opts.UnkForBytes {
			return nil, fmt.Errorf("tokenizer: byte 0x%02x (%q) is not in the vocabulary: not a byte-level BPE vocabulary", b, byteChars[b])
		}
	}
	added := append([]AddedToken(nil), opts.AddedTokens...)
	for _, s := range []string{opts.ClsToken, opts.PadToken, opts.SepToken, opts.UnkToken, opts.MaskToken} {
		added = append(added, AddedToken{Content: s})
	}
	t.added = addedTokens(vocab, added)
	return t, nil
}
