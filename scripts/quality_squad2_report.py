#!/usr/bin/env python3
"""The tables of docs/quality.md's SQuAD 2.0 section from scripts/quality_squad2.sh's
output. Usage: quality_squad2_report.py OUT [NAME (seed-42)]"""
import glob
import json
import os
import sys

TOL = 1.5  # the acceptance: loraqa within 1.5 points of HF + PEFT on HasAns F1 and NoAns F1


def load(path):
    with open(path) as f:
        return json.load(f)


def jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def read(path, default=""):
    try:
        with open(path) as f:
            return f.read().strip()
    except FileNotFoundError:
        return default


def lq_steps(run):
    return [r for r in jsonl(os.path.join(run, "metrics.jsonl")) if r.get("type") == "train"]


def main():
    out = sys.argv[1]
    name = sys.argv[2] if len(sys.argv) > 2 else "seed-42"
    d, ev = os.path.join(out, name), os.path.join(out, name, "eval")
    hf0, lq0 = load(f"{ev}/hf-t0.json"), load(f"{ev}/lq-t0.json")
    hfs, lqs = load(f"{ev}/hf-saved.json"), load(f"{ev}/lq-saved.json")
    ht, lt = float(read(f"{ev}/hf-saved.thresh")), float(read(f"{ev}/lq-saved.thresh"))
    print(f"### Threshold 0 (null_score_diff_threshold 0), test split: {hf0['total']} questions "
          f"({hf0.get('HasAns_total', 0)} answerable, {hf0.get('NoAns_total', 0)} unanswerable)\n")
    print("| metric | HF + PEFT | loraqa | loraqa − HF |")
    print("|---|---|---|---|")
    for k in ("exact", "f1", "HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1", "best_exact", "best_f1"):
        print(f"| {k} | {hf0[k]:.2f} | {lq0[k]:.2f} | {lq0[k] - hf0[k]:+.2f} |")
    print(f"| best_f1_thresh | {hf0['best_f1_thresh']:.4f} | {lq0['best_f1_thresh']:.4f} | |")
    print(f"| answered \"\" (abstained) | {hf0['abstained']} | {lq0['abstained']} | |")
    print(f"| abstention precision / recall | {hf0['abstain_precision']:.2f} / {hf0['abstain_recall']:.2f} "
          f"| {lq0['abstain_precision']:.2f} / {lq0['abstain_recall']:.2f} | |")
    print()
    print("### Each side's saved threshold (loraqa: loraqa_squad2.json; HF + PEFT: its best_f1_thresh)\n")
    print("| metric | HF + PEFT | loraqa | loraqa − HF |")
    print("|---|---|---|---|")
    print(f"| null_score_diff_threshold | {ht:.4f} | {lt:.4f} | |")
    for k in ("exact", "f1", "HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1"):
        print(f"| {k} | {hfs[k]:.2f} | {lqs[k]:.2f} | {lqs[k] - hfs[k]:+.2f} |")
    print(f"| answered \"\" (abstained) | {hfs['abstained']} | {lqs['abstained']} | |")
    print(f"| abstention precision | {hfs['abstain_precision']:.2f} | {lqs['abstain_precision']:.2f} | "
          f"{lqs['abstain_precision'] - hfs['abstain_precision']:+.2f} |")
    print(f"| abstention recall | {hfs['abstain_recall']:.2f} | {lqs['abstain_recall']:.2f} | "
          f"{lqs['abstain_recall'] - hfs['abstain_recall']:+.2f} |")
    print()
    if os.path.exists(f"{ev}/hf-span.json") and os.path.exists(f"{ev}/lq-span.json"):
        hsp, lsp = load(f"{ev}/hf-span.json"), load(f"{ev}/lq-span.json")
        print("### Every question answered by its best span (threshold 1e9, never \"\")\n")
        print("| metric | HF + PEFT | loraqa | loraqa − HF |")
        print("|---|---|---|---|")
        for k in ("exact", "f1", "HasAns_exact", "HasAns_f1"):
            print(f"| {k} | {hsp[k]:.2f} | {lsp[k]:.2f} | {lsp[k] - hsp[k]:+.2f} |")
        print()
    # the null odds (null score − best span's score) apart from any threshold: their range, and how well
    # they rank the unanswerable above the answerable (AUC: the chance that an unanswerable question's
    # odds beat an answerable one's)
    epochs = len(jsonl(f"{d}/hf.jsonl"))
    gold = {r["id"]: bool(r["answers"]["text"]) for r in jsonl(os.path.join(out, "split", "test.jsonl"))}
    print("| null odds | HF + PEFT | loraqa |")
    print("|---|---|---|")
    rows = []
    for path in (f"{d}/hf/epoch-{epochs}/null_odds.json", f"{ev}/lq-t0/null_odds.json"):
        o = load(path)
        v = sorted(o.values())
        pos = [o[k] for k in o if not gold[k]]
        neg = [o[k] for k in o if gold[k]]
        auc = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / (len(pos) * len(neg))
        rows.append((v[0], v[len(v) // 2], v[-1], auc))
    print(f"| min / median / max | {rows[0][0]:.2f} / {rows[0][1]:.2f} / {rows[0][2]:.2f} "
          f"| {rows[1][0]:.2f} / {rows[1][1]:.2f} / {rows[1][2]:.2f} |")
    print(f"| AUC, unanswerable over answerable | {rows[0][3]:.3f} | {rows[1][3]:.3f} |")
    print()
    hs = jsonl(f"{d}/hf-steps.jsonl")
    ls = lq_steps(f"{d}/run")
    mean = lambda xs: sum(xs) / len(xs)
    # each side's own evaluation after every epoch (threshold 0; HF's through the official script,
    # loraqa's its trainer's), with the epoch's mean training loss
    hf_ep = [r for r in jsonl(f"{d}/hf.jsonl") if r.get("squad_v2")]
    lq_ep = [r for r in jsonl(os.path.join(d, "run", "metrics.jsonl")) if r.get("type") == "eval" and r.get("squad_v2")]
    if len(hf_ep) > 1 and len(hf_ep) == len(lq_ep):
        per = len(ls) // len(lq_ep)
        print("| epoch | mean train loss HF / loraqa | HasAns_f1 HF / loraqa | NoAns_f1 HF / loraqa "
              "| f1 HF / loraqa | best_f1 HF / loraqa |")
        print("|---|---|---|---|---|---|")
        for i, (h, q) in enumerate(zip(hf_ep, lq_ep)):
            hv, qv = h["squad_v2"], q["squad_v2"]
            ql = mean([r["loss"] for r in ls[i * per:(i + 1) * per]])
            print(f"| {i + 1} | {h['train_loss']:.4f} / {ql:.4f} | {hv['HasAns_f1']:.2f} / {qv['HasAns_f1']:.2f} "
                  f"| {hv['NoAns_f1']:.2f} / {qv['NoAns_f1']:.2f} | {hv['f1']:.2f} / {qv['f1']:.2f} "
                  f"| {hv['best_f1']:.2f} / {qv['best_f1']:.2f} |")
        print()
    print("| | HF + PEFT | loraqa |")
    print("|---|---|---|")
    print(f"| optimizer steps | {len(hs)} | {len(ls)} |")
    print(f"| step 1 loss | {hs[0]['loss']:.4f} | {ls[0]['loss']:.4f} |")
    print(f"| mean train loss (all steps) | {mean([r['loss'] for r in hs]):.4f} | {mean([r['loss'] for r in ls]):.4f} |")
    print(f"| mean train loss, last 50 steps | {mean([r['loss'] for r in hs[-50:]]):.4f} "
          f"| {mean([r['loss'] for r in ls[-50:]]):.4f} |")
    print(f"| wall seconds, whole run (load, train, evaluate) | {read(f'{d}/hf.seconds')} | {read(f'{d}/loraqa.seconds')} |")
    hm, lm = {r["step"]: r["loss"] for r in hs}, {r["step"]: r["loss"] for r in ls}
    common = sorted(set(hm) & set(lm))
    dl = [abs(hm[k] - lm[k]) for k in common]
    print(f"| max \\|Δ loss\\| over the {len(common)} steps (step) | {max(dl):.2e} ({common[dl.index(max(dl))]}) | |")
    print()
    # loraqa's own numbers (Go's evaluation of its predictions) beside the Python official script's
    for tag in ("t0", "saved"):
        own = load(f"{ev}/lq-{tag}.loraqa.json")
        own = own.get("squad_v2", own)
        py = lq0 if tag == "t0" else lqs
        diffs = {k: abs(own[k] - py[k]) for k in ("exact", "f1", "HasAns_f1", "NoAns_f1") if k in own}
        print(f"loraqa eval's own keys at {tag} vs the official script on its predictions: max |Δ| "
              f"{max(diffs.values()) if diffs else float('nan'):.2e} ({', '.join(sorted(diffs))})")
    ok = {k: abs(lq0[k] - hf0[k]) <= TOL for k in ("HasAns_f1", "NoAns_f1")}
    print(f"\nwithin {TOL} points at threshold 0: " + ", ".join(f"{k} {'yes' if v else 'NO'} "
          f"({lq0[k] - hf0[k]:+.2f})" for k, v in ok.items()))
    oks = {k: abs(lqs[k] - hfs[k]) <= TOL for k in ("HasAns_f1", "NoAns_f1")}
    print(f"within {TOL} points at the saved thresholds: " + ", ".join(f"{k} {'yes' if v else 'NO'} "
          f"({lqs[k] - hfs[k]:+.2f})" for k, v in oks.items()))
    for lock in sorted(glob.glob(os.path.join(out, "lockstep-*"))):
        if not os.path.exists(f"{lock}/loraqa.done"):
            continue
        h = {r["step"]: r["loss"] for r in jsonl(f"{lock}/hf-steps.jsonl")}
        q = {r["step"]: r["loss"] for r in lq_steps(f"{lock}/run")}
        common = sorted(set(h) & set(q))
        dl = [abs(h[s] - q[s]) for s in common]
        how = "dropout on, the same masks" if lock.endswith("-dropout") else "dropout off"
        print(f"\n{os.path.basename(lock)} ({how}, loraqa from PEFT's initial adapter): {len(common)} steps; "
              f"step 1 loss HF {h[common[0]]:.6f} / loraqa {q[common[0]]:.6f}; max |Δ loss| {max(dl):.2e} "
              f"(at step {common[dl.index(max(dl))]}); last step {h[common[-1]]:.6f} / {q[common[-1]]:.6f}")


if __name__ == "__main__":
    main()
