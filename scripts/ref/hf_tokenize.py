#!/usr/bin/env python3
"""Reference tokenization with Hugging Face's own BertTokenizerFast or
RobertaTokenizerFast.

Reads JSON lines from stdin and writes one JSON line to stdout per input line.

A line that is a JSON string, or an object {"text": ...}, is one text:

    -> {"ids": [...], "offsets": [[start, end], ...]}

the ids of the text alone (add_special_tokens=False) and HF's character
(code point) offsets into it.

A line that is an object {"question", "context", "max_length", "stride"} is a
question/context pair cut into windows as HF run_qa does (truncation
"only_second", return_overflowing_tokens, the given stride):

    -> {"windows": [{"input_ids": [...], "token_type_ids": [...] or null,
                     "special_tokens_mask": [...],
                     "offsets": [[s, e] or null, ...]}, ...]}

with offsets null for tokens outside the context, and token_type_ids null
where the tokenizer gives none (RoBERTa).

Usage: hf_tokenize.py TOKENIZER_DIR

TOKENIZER_DIR holds a BERT WordPiece tokenizer (vocab.txt and tokenizer.json:
BertTokenizerFast), or a RoBERTa byte-level BPE one (vocab.json + merges.txt,
and/or a tokenizer.json whose model is BPE, maybe tokenizer_config.json:
RobertaTokenizerFast.from_pretrained, as run_qa loads it).

The Go tests in data/ run this in the reference environment on the tokenizer
directories make reference generates (.build/testdata/tokenizer, and the
byte-level BPE trained on the samples in .build/testdata/roberta-bpe) or on
roberta-base's files, and compare the Go tokenizer and windows with it.
"""
import json
import os
import sys
from collections import defaultdict

from transformers import BertTokenizerFast, RobertaTokenizerFast


def is_byte_level_bpe(tok_dir):
    path = os.path.join(tok_dir, "tokenizer.json")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            return json.load(f)["model"].get("type") == "BPE"
    return os.path.exists(os.path.join(tok_dir, "vocab.json"))


def load(tok_dir):
    if is_byte_level_bpe(tok_dir):
        tok = RobertaTokenizerFast.from_pretrained(tok_dir)
    else:
        tok = BertTokenizerFast(
            vocab_file=os.path.join(tok_dir, "vocab.txt"),
            tokenizer_file=os.path.join(tok_dir, "tokenizer.json"),
        )
    # tokenizer.json carries a truncation/padding block (128): never apply it.
    tok.backend_tokenizer.no_truncation()
    tok.backend_tokenizer.no_padding()
    return tok


def encode_texts(tok, texts):
    enc = tok(texts, add_special_tokens=False, return_offsets_mapping=True)
    return [
        {"ids": ids, "offsets": [list(o) for o in offs]}
        for ids, offs in zip(enc["input_ids"], enc["offset_mapping"])
    ]


def encode_pairs(tok, pairs, max_length, stride):
    enc = tok(
        [p["question"] for p in pairs],
        [p["context"] for p in pairs],
        truncation="only_second",
        max_length=max_length,
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
    )
    out = [{"windows": []} for _ in pairs]
    for i, sample in enumerate(enc["overflow_to_sample_mapping"]):
        seq_ids = enc.sequence_ids(i)
        offsets = [
            list(o) if seq_ids[k] == 1 else None
            for k, o in enumerate(enc["offset_mapping"][i])
        ]
        out[sample]["windows"].append(
            {
                "input_ids": enc["input_ids"][i],
                "token_type_ids": enc["token_type_ids"][i] if "token_type_ids" in enc else None,
                "special_tokens_mask": enc["special_tokens_mask"][i],
                "offsets": offsets,
            }
        )
    return out


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: hf_tokenize.py TOKENIZER_DIR", file=sys.stderr)
        return 2
    tok = load(sys.argv[1])

    items = []
    for n, line in enumerate(sys.stdin, 1):
        if not line.strip():
            continue
        try:
            items.append(json.loads(line))
        except json.JSONDecodeError as e:
            print(f"stdin line {n}: {e}", file=sys.stderr)
            return 2

    results = [None] * len(items)
    texts, pairs = [], defaultdict(list)
    for i, item in enumerate(items):
        if isinstance(item, str):
            texts.append((i, item))
        elif isinstance(item, dict) and "question" in item:
            pairs[(item["max_length"], item["stride"])].append((i, item))
        elif isinstance(item, dict) and "text" in item:
            texts.append((i, item["text"]))
        else:
            print(f"item {i + 1}: want a string, {{text}} or {{question, context, max_length, stride}}", file=sys.stderr)
            return 2
    if texts:
        for (i, _), r in zip(texts, encode_texts(tok, [t for _, t in texts])):
            results[i] = r
    for (max_length, stride), group in pairs.items():
        for (i, _), r in zip(group, encode_pairs(tok, [p for _, p in group], max_length, stride)):
            results[i] = r

    out = sys.stdout
    for r in results:
        out.write(json.dumps(r))
        out.write("\n")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
