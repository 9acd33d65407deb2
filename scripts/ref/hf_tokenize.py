#!/usr/bin/env python3
"""Reference tokenization with Hugging Face's own BertTokenizerFast.

Reads JSON lines from stdin. Each line is either a JSON string (one text) or an
object {"text": "..."}. Writes one JSON object per input line to stdout:

    {"ids": [...], "offsets": [[start, end], ...]}

The ids are those of the text alone, without [CLS]/[SEP] (add_special_tokens=False),
and the offsets are HF's character (code point) offsets into the text.

Usage: hf_tokenize.py [TOKENIZER_DIR]   (default: ../shared/tokenizer from the repo root)

The Go test in data/ runs this in the reference environment (transformers 4.30.2,
tokenizers 0.13) and compares the Go tokenizer with it.
"""
import json
import os
import sys

from transformers import BertTokenizerFast


def main() -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    default_dir = os.path.join(here, "..", "..", "..", "shared", "tokenizer")
    tok_dir = sys.argv[1] if len(sys.argv) > 1 else default_dir
    tok = BertTokenizerFast(
        vocab_file=os.path.join(tok_dir, "vocab.txt"),
        tokenizer_file=os.path.join(tok_dir, "tokenizer.json"),
        do_lower_case=True,
    )
    # tokenizer.json carries a truncation/padding block (128); never truncate here.
    tok.backend_tokenizer.no_truncation()
    tok.backend_tokenizer.no_padding()

    texts = []
    for n, line in enumerate(sys.stdin, 1):
        line = line.rstrip("\n")
        if not line:
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as e:
            print(f"stdin line {n}: {e}", file=sys.stderr)
            return 2
        texts.append(item["text"] if isinstance(item, dict) else item)

    enc = tok(texts, add_special_tokens=False, return_offsets_mapping=True)
    out = sys.stdout
    for ids, offsets in zip(enc["input_ids"], enc["offset_mapping"]):
        out.write(json.dumps({"ids": ids, "offsets": [list(o) for o in offsets]}))
        out.write("\n")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
