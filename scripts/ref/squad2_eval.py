#!/usr/bin/env python3
"""SQuAD 2.0 post-processing and evaluation of a run's outputs, for docs/quality.md's
SQuAD 2.0 fine-tune (scripts/quality_squad2.sh). Runs in .build/venv-squad2 and calls
squad2_ref.py's loaders: HF's own postprocess_qa_predictions (utils_qa.py, as sparseml
ships it) and transformers 4.57.6's squad_metrics.squad_evaluate (the official
evaluate-v2.0.py), nothing copied.

  squad2_eval.py postprocess --logits logits.json --threshold T --out DIR
      logits.json: squad2_ref.py's request fields (examples, features, start_logits,
      end_logits), as hf_train_qa.py --version-2-with-negative writes them. Writes
      DIR/predictions.json and DIR/null_odds.json: postprocess_qa_predictions with
      version_2_with_negative=True, n_best_size 20, max_answer_length 30 and
      null_score_diff_threshold T.
  squad2_eval.py evaluate --data test.jsonl --pred predictions.json [--na-prob null_odds.json]
      The official evaluation (na_prob_thresh 1.0, the script's default) of the
      predictions on the hf-jsonl questions (no gold answer: unanswerable), and the
      abstention: abstain_precision (of the questions answered "", the fraction that
      are unanswerable), abstain_recall (of the unanswerable, the fraction answered
      ""), abstained (how many answered ""). Prints one JSON object.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import squad2_ref  # noqa: E402


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def postprocess(a):
    with open(a.logits, encoding="utf-8") as f:
        req = json.load(f)
    opts = dict(version_2_with_negative=True, n_best_size=20, max_answer_length=30,
                null_score_diff_threshold=a.threshold)
    out = squad2_ref.run_postprocess(squad2_ref.load_postprocess(), req, opts)
    os.makedirs(a.out, exist_ok=True)
    for name, v in (("predictions.json", out["predictions"]), ("null_odds.json", out["null_odds"])):
        with open(os.path.join(a.out, name), "w", encoding="utf-8") as f:
            json.dump(v, f, indent=2)


def evaluate(a):
    rows = read_jsonl(a.data)
    examples = [squad2_ref.SquadExample(r["id"], [{"text": t} for t in r["answers"]["text"]]) for r in rows]
    with open(a.pred, encoding="utf-8") as f:
        preds = json.load(f)
    na = None
    if a.na_prob:
        with open(a.na_prob, encoding="utf-8") as f:
            na = json.load(f)
    m = dict(squad2_ref.load_squad_evaluate()(examples, preds, no_answer_probs=na,
                                               no_answer_probability_threshold=a.na_prob_thresh))
    unans = {r["id"] for r in rows if not r["answers"]["text"]}
    abstained = {r["id"] for r in rows if preds.get(r["id"], "") == ""}
    m["abstained"] = len(abstained)
    m["abstain_precision"] = 100.0 * len(abstained & unans) / len(abstained) if abstained else 0.0
    m["abstain_recall"] = 100.0 * len(abstained & unans) / len(unans) if unans else 0.0
    json.dump(m, sys.stdout)
    print()


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("postprocess")
    p.add_argument("--logits", required=True)
    p.add_argument("--threshold", type=float, default=0.0)
    p.add_argument("--out", required=True)
    e = sub.add_parser("evaluate")
    e.add_argument("--data", required=True)
    e.add_argument("--pred", required=True)
    e.add_argument("--na-prob", default="")
    e.add_argument("--na-prob-thresh", type=float, default=1.0)
    a = ap.parse_args()
    postprocess(a) if a.cmd == "postprocess" else evaluate(a)


if __name__ == "__main__":
    main()
