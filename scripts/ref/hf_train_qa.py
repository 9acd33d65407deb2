"""The reference fine-tune for docs/quality.md: HF transformers + PEFT LoRA on
QA records (the hf-jsonl files `loraqa prepare` writes), with the settings
loraqa uses: windows of --max-len with --stride overlap (labels as HF run_qa
makes them: the answer's tokens, or [CLS] when the window does not hold it),
AdamW with HF Trainer's decay groups, linear schedule, clipping 1.0, and after
every epoch the SQuAD v1.1 exact match / F1 of the best span over all windows
(n_best 20, max answer length 30). Prints one JSON line per epoch.

Batches are drawn with loraqa's shuffle (SplitMix64 Fisher-Yates, seeded by
--seed and the epoch; data/rng.go), so a seed gives both implementations the
same batches; with --reseed the generator is reseeded before every batch from
(seed, step, batch) as loraqa's trainer does, so that the same weights draw the
same dropout masks on both sides. token_type_ids go to the model as HF's BERT QA uses them (0 for
the question, 1 for the context). --save-init writes the freshly initialised
adapter (LoRA A/B and the qa_outputs head) before the first step, for loraqa's
lora.init_from; --no-dropout switches off every dropout (hidden, attention,
LoRA); --steps FILE writes each step's loss as JSON lines; --max-steps N stops
after N steps (the linear schedule spanning them, as HF Trainer's max_steps) and
prints the training seconds (for timing, no evaluation).

--version-2-with-negative (SQuAD 2.0): questions without an answer are kept and
labelled at [CLS], as run_qa's prepare_train_features does; after every epoch the
test windows' logits go to --output-dir/epoch-N/logits.json and scripts/ref/
squad2_eval.py, in the SQuAD 2.0 reference venv (--squad2-python, else
$LORAQA_SQUAD2_PYTHON, else .build/venv-squad2/bin/python), post-processes them with
HF's postprocess_qa_predictions (version_2_with_negative, null_score_diff_threshold
0: predictions.json, null_odds.json) and scores them with the official SQuAD 2.0
evaluation; the epoch's line carries its keys under squad_v2.

usage: hf_train_qa.py --model DIR --train train.jsonl --test test.jsonl
       [--epochs 3] [--lr 5e-4] [--batch 8] [--max-len 384] [--stride 128] [--seed 42]
       [--targets query,value] [--save-init DIR] [--no-dropout] [--steps FILE] [--max-steps N] [--reseed] [--init-adapter DIR]
       [--version-2-with-negative --output-dir DIR [--squad2-python PY]]
"""
import argparse
import collections
import json
import math
import os
import re
import string
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch  # noqa: E402


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def windows(tok, examples, max_len, stride, train):
    enc = tok([e["question"] for e in examples], [e["context"] for e in examples], truncation="only_second",
              max_length=max_len, stride=stride, return_overflowing_tokens=True, return_offsets_mapping=True,
              padding=False)
    feats = []
    for i in range(len(enc["input_ids"])):
        ex_idx = enc["overflow_to_sample_mapping"][i]
        seq = enc.sequence_ids(i)
        offsets = [o if seq[k] == 1 else None for k, o in enumerate(enc["offset_mapping"][i])]
        f = dict(ex=ex_idx, input_ids=enc["input_ids"][i], attention_mask=enc["attention_mask"][i], offsets=offsets)
        if "token_type_ids" in enc:
            f["token_type_ids"] = enc["token_type_ids"][i]
        if train and not examples[ex_idx]["answers"]["text"]:  # SQuAD 2.0: no answer, labelled at [CLS]
            f["start"], f["end"] = 0, 0
        elif train:
            e = examples[ex_idx]
            s_char = e["answers"]["answer_start"][0]
            e_char = s_char + len(e["answers"]["text"][0])
            ctx = [k for k, o in enumerate(offsets) if o is not None]
            first, last = ctx[0], ctx[-1]
            if offsets[first][0] <= s_char and offsets[last][1] >= e_char:
                s = next(k for k in ctx if offsets[k][1] > s_char)
                en = max(k for k in ctx if offsets[k][0] < e_char)
                f["start"], f["end"] = s, en
            else:
                f["start"], f["end"] = 0, 0
        feats.append(f)
    return feats


M64 = (1 << 64) - 1


class SplitMix64:
    """loraqa's data/rng.go, bit for bit: newRNG(seed, stream), intn (Lemire), shuffle."""

    def __init__(self, seed, stream):
        self.state = (seed ^ ((stream * 0xD1B54A32D192ED03) & M64)) & M64

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & M64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        return z ^ (z >> 31)

    def intn(self, n):
        m = self.next() * n
        hi, lo = m >> 64, m & M64
        if lo < n:
            threshold = ((1 << 64) - n) % n
            while lo < threshold:
                m = self.next() * n
                hi, lo = m >> 64, m & M64
        return hi

    def shuffle(self, idx):
        for i in range(len(idx) - 1, 0, -1):
            j = self.intn(i + 1)
            idx[i], idx[j] = idx[j], idx[i]


def inputs(b):
    x = dict(input_ids=pad(b, "input_ids"), attention_mask=pad(b, "attention_mask"))
    if "token_type_ids" in b[0]:
        x["token_type_ids"] = pad(b, "token_type_ids")
    return x


def pad(batch, key, value=0):
    n = max(len(f[key]) for f in batch)
    return torch.tensor([f[key] + [value] * (n - len(f[key])) for f in batch])


def normalize(s):
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def f1(pred, gold):
    p, g = normalize(pred).split(), normalize(gold).split()
    common = collections.Counter(p) & collections.Counter(g)
    same = sum(common.values())
    if same == 0:
        return 0.0
    pr, rc = same / len(p), same / len(g)
    return 2 * pr * rc / (pr + rc)


def evaluate(model, examples, feats, batch):
    model.eval()
    best = {}
    with torch.no_grad():
        for i in range(0, len(feats), batch):
            b = feats[i:i + batch]
            out = model(**inputs(b))
            for j, f in enumerate(b):
                sl, el = out.start_logits[j].tolist(), out.end_logits[j].tolist()
                top_s = sorted(range(len(f["input_ids"])), key=lambda k: -sl[k])[:20]
                top_e = sorted(range(len(f["input_ids"])), key=lambda k: -el[k])[:20]
                for s in top_s:
                    for e in top_e:
                        if f["offsets"][s] is None or f["offsets"][e] is None or e < s or e - s + 1 > 30:
                            continue
                        score = sl[s] + el[e]
                        if f["ex"] not in best or score > best[f["ex"]][0]:
                            ctx = examples[f["ex"]]["context"]
                            best[f["ex"]] = (score, ctx[f["offsets"][s][0]:f["offsets"][e][1]])
    em = f1s = 0.0
    for i, e in enumerate(examples):
        pred = best.get(i, (0, ""))[1]
        golds = e["answers"]["text"]
        em += max(float(normalize(pred) == normalize(g)) for g in golds)
        f1s += max(f1(pred, g) for g in golds)
    model.train()
    return 100 * em / len(examples), 100 * f1s / len(examples)


def evaluate_v2(model, examples, feats, batch, out_dir, squad2_python, test_path):
    """SQuAD 2.0 (--version-2-with-negative): the test windows' logits to out_dir/logits.json, then
    HF's postprocess_qa_predictions (version_2_with_negative, null_score_diff_threshold 0) and the
    official evaluation through squad2_eval.py in the SQuAD 2.0 reference venv; its keys."""
    import subprocess
    model.eval()
    starts, ends = [], []
    with torch.no_grad():
        for i in range(0, len(feats), batch):
            b = feats[i:i + batch]
            out = model(**inputs(b))
            for j, f in enumerate(b):
                n = len(f["input_ids"])
                starts.append(out.start_logits[j, :n].tolist())
                ends.append(out.end_logits[j, :n].tolist())
    model.train()
    os.makedirs(out_dir, exist_ok=True)
    req = dict(examples=[dict(id=e["id"], context=e["context"]) for e in examples],
               features=[dict(example_id=examples[f["ex"]]["id"], offset_mapping=f["offsets"]) for f in feats],
               start_logits=starts, end_logits=ends)
    logits = os.path.join(out_dir, "logits.json")
    with open(logits, "w") as f:
        json.dump(req, f)
    tool = os.path.join(os.path.dirname(os.path.abspath(__file__)), "squad2_eval.py")
    subprocess.run([squad2_python, tool, "postprocess", "--logits", logits, "--threshold", "0", "--out", out_dir],
                   check=True)
    res = subprocess.run([squad2_python, tool, "evaluate", "--data", test_path, "--pred",
                          os.path.join(out_dir, "predictions.json"), "--na-prob", os.path.join(out_dir, "null_odds.json")],
                         check=True, capture_output=True, text=True)
    return json.loads(res.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--train", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--max-len", type=int, default=384)
    ap.add_argument("--stride", type=int, default=128)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--targets", default="query,value")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--save-init", default="")
    ap.add_argument("--no-dropout", action="store_true")
    ap.add_argument("--steps", default="")
    ap.add_argument("--init-adapter", default="", help="start from this PEFT adapter (is_trainable=True)")
    ap.add_argument("--reseed", action="store_true", help="reseed before every batch as loraqa does")
    ap.add_argument("--max-steps", type=int, default=0, help="stop after N steps, without evaluating (timing)")
    ap.add_argument("--version-2-with-negative", action="store_true",
                    help="SQuAD 2.0: unanswerable questions trained at [CLS], evaluated by HF's post-processing "
                         "and the official SQuAD 2.0 evaluation (needs --output-dir)")
    ap.add_argument("--output-dir", default="", help="with --version-2-with-negative: epoch-N/{logits,predictions,null_odds}.json")
    ap.add_argument("--squad2-python", default=os.environ.get("LORAQA_SQUAD2_PYTHON", ".build/venv-squad2/bin/python"))
    a = ap.parse_args()
    if a.version_2_with_negative and not a.output_dir:
        ap.error("--version-2-with-negative needs --output-dir")
    torch.set_num_threads(a.threads)
    from transformers import AutoConfig, AutoModelForQuestionAnswering, AutoTokenizer, get_linear_schedule_with_warmup
    from transformers.pytorch_utils import ALL_LAYERNORM_LAYERS
    from transformers.trainer_pt_utils import get_parameter_names
    from peft import LoraConfig, PeftModel, TaskType, get_peft_model

    torch.manual_seed(a.seed)
    tok = AutoTokenizer.from_pretrained(a.model)
    train_ex, test_ex = read_jsonl(a.train), read_jsonl(a.test)
    train_f = windows(tok, train_ex, a.max_len, a.stride, True)
    test_f = windows(tok, test_ex, a.max_len, a.stride, False)
    cfg = AutoConfig.from_pretrained(a.model)
    if a.no_dropout:
        for k in ("hidden_dropout_prob", "attention_probs_dropout_prob", "dropout", "attention_dropout", "qa_dropout"):
            if hasattr(cfg, k):
                setattr(cfg, k, 0.0)
    base = AutoModelForQuestionAnswering.from_pretrained(a.model, config=cfg)
    if a.init_adapter:  # start from a saved adapter instead of a fresh one
        model = PeftModel.from_pretrained(base, a.init_adapter, is_trainable=True)
    else:
        model = get_peft_model(base, LoraConfig(task_type=TaskType.QUESTION_ANS, r=16, lora_alpha=32,
                                                lora_dropout=0.0 if a.no_dropout else 0.05,
                                                target_modules=a.targets.split(",")))
    if a.save_init:
        model.save_pretrained(a.save_init, safe_serialization=True)
    steps_out = open(a.steps, "w") if a.steps else None
    model.train()
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    decay = {n for n in get_parameter_names(model, ALL_LAYERNORM_LAYERS) if "bias" not in n}
    opt = torch.optim.AdamW([{"params": [p for n, p in named if n in decay], "weight_decay": 0.01},
                             {"params": [p for n, p in named if n not in decay], "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.999), eps=1e-8)
    per_epoch = math.ceil(len(train_f) / a.batch)
    steps = a.epochs * per_epoch
    if a.max_steps:  # the schedule spans the steps run, as HF Trainer's and loraqa's max_steps
        steps = min(steps, a.max_steps)
    sched = get_linear_schedule_with_warmup(opt, 0, steps)
    params = [p for _, p in named]
    t0 = time.perf_counter()
    done = 0
    for epoch in range(a.epochs):
        order = list(range(len(train_f)))
        SplitMix64(a.seed, epoch + 1).shuffle(order)
        losses = []
        for i in range(0, len(order), a.batch):
            b = [train_f[k] for k in order[i:i + a.batch]]
            bi = i // a.batch
            if a.reseed:  # as loraqa's trainer reseeds before every batch
                torch.manual_seed(a.seed * 1_000_003 + (epoch * per_epoch + bi) * 1009 + bi)
            out = model.base_model(**inputs(b), start_positions=torch.tensor([f["start"] for f in b]),
                                   end_positions=torch.tensor([f["end"] for f in b]))
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            losses.append(out.loss.item())
            done += 1
            if steps_out:
                steps_out.write(json.dumps(dict(step=epoch * per_epoch + bi + 1,
                                                loss=losses[-1])) + "\n")
            if done == a.max_steps:
                print(json.dumps(dict(steps=done, train_seconds=time.perf_counter() - t0)), flush=True)
                return 0
        secs = time.perf_counter() - t0
        if a.version_2_with_negative:
            m = evaluate_v2(model.base_model, test_ex, test_f, 32, os.path.join(a.output_dir, f"epoch-{epoch + 1}"),
                            a.squad2_python, a.test)
            em, f = m["exact"], m["f1"]
        else:
            m = {}
            em, f = evaluate(model.base_model, test_ex, test_f, 32)
        t0 = time.perf_counter() - secs  # evaluation time is not training time
        print(json.dumps(dict(epoch=epoch + 1, train_loss=sum(losses) / len(losses), exact_match=em, f1=f,
                              n=len(test_ex), windows=len(train_f), train_seconds=secs, squad_v2=m or None)), flush=True)


if __name__ == "__main__":
    sys.exit(main())
