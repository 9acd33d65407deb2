#!/usr/bin/env python3
"""SQuAD 2.0 reference: HF's own post-processing and the official evaluation.

Runs in the venv scripts/setup-squad2-ref.sh makes (.build/venv-squad2), on code
that is installed there from PyPI, not copied into this repository:

  * postprocess_qa_predictions of HF transformers' examples/pytorch/question-answering/
    utils_qa.py, as sparseml 1.8.0 ships it (sparseml/transformers/sparsification/
    question_answering.py, "Adapted from https://github.com/huggingface/transformers":
    the same statements, with ValueError for assert and a guard against offsets shorter
    than 2). Importing sparseml would need PyTorch and transformers 4.x's
    is_torch_tpu_available, so the one function is taken out of the file with ast and
    run with numpy (tqdm replaced by a pass-through, to keep stderr quiet).
  * transformers.data.metrics.squad_metrics.squad_evaluate of transformers 4.57.6:
    HF's port of the official evaluate-v2.0.py (exact, f1, total, HasAns_*, NoAns_*,
    best_exact(_thresh), best_f1(_thresh)).

Reads one JSON request on stdin, writes one JSON answer on stdout:

  {"examples": [{"id", "context"}], "features": [{"example_id", "offset_mapping":
   [[s, e] or null]}], "start_logits": [[...]], "end_logits": [[...]],  (float32 values)
   "postprocess": [{"version_2_with_negative", "n_best_size", "max_answer_length",
                    "null_score_diff_threshold"}],
   "evaluate": [{"data_file", "pred_file", "na_prob_file" (or null), "na_prob_thresh"}]}
  -> {"postprocess": [{"predictions": {id: text}, "nbest": {id: [...]},
                       "null_odds": {id: float} or null}],
      "evaluate": [{"exact": ..., ...}]}

data_file is SQuAD JSON; as the official script, a question's has-answer is
bool(qa["answers"]).

Usage: squad2_ref.py < request.json     squad2_ref.py --check   (both load; prints versions)
"""
import ast
import collections
import importlib.util
import json
import logging
import os
import sys
import tempfile
import typing
from importlib.metadata import version

import numpy as np

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # no "None of PyTorch ... found" at import


def load_postprocess():
    """HF's postprocess_qa_predictions, from sparseml's copy of utils_qa.py."""
    spec = importlib.util.find_spec("sparseml")  # a top-level spec: nothing is imported
    path = os.path.join(spec.submodule_search_locations[0], "transformers", "sparsification",
                        "question_answering.py")
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    fns = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "postprocess_qa_predictions"]
    if len(fns) != 1:
        sys.exit(f"squad2_ref: postprocess_qa_predictions not found in {path}")
    ns = {"collections": collections, "json": json, "logging": logging, "os": os, "np": np,
          "tqdm": lambda it, **kw: it, "_LOGGER": logging.getLogger("utils_qa")}
    ns.update({k: getattr(typing, k) for k in ("Any", "Dict", "List", "Optional", "Tuple", "Union")})
    exec(compile(ast.Module(body=fns, type_ignores=[]), path, "exec"), ns)
    return ns["postprocess_qa_predictions"]


def load_squad_evaluate():
    from transformers.data.metrics.squad_metrics import squad_evaluate
    return squad_evaluate


class Rows(list):
    """A list of dicts that answers rows["column"] as a datasets.Dataset does."""

    def __getitem__(self, k):
        if isinstance(k, str):
            return [r[k] for r in self]
        return list.__getitem__(self, k)


class SquadExample:
    """What squad_evaluate reads of transformers' SquadExample."""

    def __init__(self, qas_id, answers):
        self.qas_id, self.answers = qas_id, answers


def read_dataset(path):
    with open(path, encoding="utf-8") as f:
        data = json.load(f)["data"]
    return [SquadExample(qa["id"], qa["answers"]) for art in data for p in art["paragraphs"] for qa in p["qas"]]


def run_postprocess(postprocess, req, opts):
    examples = Rows(req["examples"])
    features = [{"example_id": f["example_id"],
                 "offset_mapping": [tuple(o) if o is not None else None for o in f["offset_mapping"]]}
                for f in req["features"]]
    starts = [np.asarray(x, dtype=np.float32) for x in req["start_logits"]]
    ends = [np.asarray(x, dtype=np.float32) for x in req["end_logits"]]
    with tempfile.TemporaryDirectory() as out:
        preds = postprocess(examples, features, (starts, ends),
                            version_2_with_negative=opts["version_2_with_negative"],
                            n_best_size=opts["n_best_size"], max_answer_length=opts["max_answer_length"],
                            null_score_diff_threshold=opts["null_score_diff_threshold"], output_dir=out)
        with open(os.path.join(out, "nbest_predictions.json")) as f:
            nbest = json.load(f)
        null_odds = None
        if opts["version_2_with_negative"]:
            with open(os.path.join(out, "null_odds.json")) as f:
                null_odds = json.load(f)
    return {"predictions": dict(preds), "nbest": nbest, "null_odds": null_odds}


def run_evaluate(squad_evaluate, ev):
    examples = read_dataset(ev["data_file"])
    with open(ev["pred_file"], encoding="utf-8") as f:
        preds = json.load(f)
    na_probs = None
    if ev.get("na_prob_file"):
        with open(ev["na_prob_file"], encoding="utf-8") as f:
            na_probs = json.load(f)
    return dict(squad_evaluate(examples, preds, no_answer_probs=na_probs,
                               no_answer_probability_threshold=ev["na_prob_thresh"]))


def check():
    postprocess, squad_evaluate = load_postprocess(), load_squad_evaluate()
    ex = Rows([{"id": "q", "context": "a b"}])
    feats = [{"example_id": "q", "offset_mapping": [None, (0, 1), (2, 3), None]}]
    logits = np.array([3, 1, 0, 0], dtype=np.float32)
    preds = postprocess(ex, feats, ([logits], [logits]), version_2_with_negative=True)
    assert preds == {"q": ""}, preds
    ev = squad_evaluate([SquadExample("q", [])], preds, no_answer_probs={"q": 4.0})
    assert ev["exact"] == 100.0 and ev["NoAns_total"] == 1, ev
    print("squad2 reference: transformers", version("transformers"), "squad_metrics;",
          "sparseml", version("sparseml"), "postprocess_qa_predictions; numpy", np.__version__)


def main():
    if sys.argv[1:] == ["--check"]:
        return check()
    req = json.load(sys.stdin)
    out = {"postprocess": [], "evaluate": []}
    if req.get("postprocess"):
        postprocess = load_postprocess()
        out["postprocess"] = [run_postprocess(postprocess, req, o) for o in req["postprocess"]]
    if req.get("evaluate"):
        squad_evaluate = load_squad_evaluate()
        out["evaluate"] = [run_evaluate(squad_evaluate, e) for e in req["evaluate"]]
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
