#!/usr/bin/env python3
"""Trains the small byte-level BPE (RoBERTa-style) vocabulary loraqa's tests
compare its RoBERTa tokenizer with, on the committed samples.

Usage: make_bpe_vocab.py REPO OUT

Reads REPO/examples/sample-qa.txt, REPO/examples/sample-filings.json and
REPO/testdata/squad-sample.json (every question, answer and context), trains
HF tokenizers' ByteLevelBPETokenizer on them (add_prefix_space False,
trim_offsets True, vocab_size 3000, min_frequency 2, the 256 byte characters
as initial alphabet, special tokens <s> <pad> </s> <unk> <mask> as ids 0-4:
<pad> is 1, as in RoBERTa) and writes into OUT:

  vocab.json, merges.txt     the trained model (ByteLevelBPETokenizer.save_model)
  tokenizer.json, tokenizer_config.json
                             RobertaTokenizerFast.from_pretrained(OUT).save_pretrained(OUT)

The Go tests (data/roberta_test.go) load these files, and load the same
files into RobertaTokenizerFast through scripts/ref/hf_tokenize.py, and
compare ids, offsets and windows. scripts/make-testdata.sh runs this at
make reference time into .build/testdata/roberta-bpe.
"""
import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from tokenizers import ByteLevelBPETokenizer  # noqa: E402
from transformers import RobertaTokenizerFast  # noqa: E402

SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


def sample_texts(repo):
    texts = []
    with open(os.path.join(repo, "examples", "sample-qa.txt"), encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line.startswith(("Q:", "A:")):
                texts.append(line[2:].strip())
    for rel in (("examples", "sample-filings.json"), ("testdata", "squad-sample.json")):
        with open(os.path.join(repo, *rel), encoding="utf-8") as f:
            doc = json.load(f)
        for art in doc["data"]:
            for p in art["paragraphs"]:
                texts.append(p["context"])
                for qa in p["qas"]:
                    texts.append(qa["question"])
                    texts.extend(a["text"] for a in qa.get("answers", []))
    return texts


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    repo, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    bpe = ByteLevelBPETokenizer(add_prefix_space=False, trim_offsets=True)
    bpe.train_from_iterator(sample_texts(repo), vocab_size=3000, min_frequency=2,
                            special_tokens=SPECIALS, show_progress=False)
    bpe.save_model(out)
    with open(os.path.join(out, "vocab.json"), encoding="utf-8") as f:
        vocab = json.load(f)
    for i, s in enumerate(SPECIALS):
        assert vocab[s] == i, (s, vocab[s])
    tok = RobertaTokenizerFast.from_pretrained(out)
    tok.save_pretrained(out)
    print(f"make_bpe_vocab: {len(vocab)} tokens in {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
