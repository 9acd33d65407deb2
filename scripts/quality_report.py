"""Markdown tables for docs/quality.md from the outputs of scripts/quality.sh.

usage: python3 scripts/quality_report.py OUT
Standard library only. Runs that have not finished are left out.
"""
import json
import os
import re
import statistics
import subprocess
import sys


def jsonl(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def hf_evals(d):
    return jsonl(os.path.join(d, "hf.jsonl")) if os.path.exists(os.path.join(d, "hf.done")) else []


def lq_records(d, kind):
    if not os.path.exists(os.path.join(d, "loraqa.done")):
        return []
    return [r for r in jsonl(os.path.join(d, "run", "metrics.jsonl")) if r.get("type") == kind]


def lq_data_line(d):
    path = os.path.join(d, "loraqa.log")
    if not os.path.exists(path):
        return ""
    with open(path) as f:
        for line in f:
            if line.startswith("data:"):
                return line.strip()
    return ""


def wall(d, first, last):
    """Seconds from the creation of first to the last change of last (GNU stat; None when unknown)."""
    try:
        born = int(subprocess.run(["stat", "-c", "%W", os.path.join(d, first)], capture_output=True, text=True,
                                  check=True).stdout)
        end = os.stat(os.path.join(d, last)).st_mtime
        return end - born if born > 0 else None
    except (OSError, ValueError, subprocess.CalledProcessError):
        return None


def walls(d):
    h, q = wall(d, "hf.jsonl", "hf.done"), wall(d, "run", "loraqa.done")
    return "–" if h is None or q is None else f"{h:.0f} s / {q:.0f} s"


def mean_sd(v):
    if not v:
        return "–"
    if len(v) == 1:
        return f"{v[0]:.2f}"
    return f"{statistics.mean(v):.2f} ± {statistics.stdev(v):.2f}"


def lockstep(out, name, title):
    d = os.path.join(out, name)
    hf, lq = hf_evals(d), lq_records(d, "eval")
    if not hf or not lq:
        return
    hf_steps = {r["step"]: r["loss"] for r in jsonl(os.path.join(d, "hf-steps.jsonl"))}
    lq_steps = {r["step"]: r["loss"] for r in lq_records(d, "train")}
    per_epoch = len(hf_steps) // len(hf) if hf else 0
    print(f"### {title}\n")
    print("| epoch | HF + PEFT EM | HF + PEFT F1 | loraqa EM | loraqa F1 | mean train loss HF / loraqa | max \\|Δ loss\\| in the epoch |")
    print("|---|---|---|---|---|---|---|")
    for h, l in zip(hf, lq):
        e = h["epoch"]
        steps = [s for s in range((e - 1) * per_epoch + 1, e * per_epoch + 1) if s in hf_steps and s in lq_steps]
        dmax = max(abs(hf_steps[s] - lq_steps[s]) for s in steps) if steps else float("nan")
        lq_mean = statistics.mean(lq_steps[s] for s in steps) if steps else float("nan")
        print(f"| {e} | {h['exact_match']:.2f} | {h['f1']:.2f} | {l['exact_match']:.2f} | {l['f1']:.2f} | "
              f"{h['train_loss']:.4f} / {lq_mean:.4f} | {dmax:.2e} |")
    if 1 in hf_steps and 1 in lq_steps:
        print(f"\nStep 1 loss: HF + PEFT {hf_steps[1]:.6f}, loraqa {lq_steps[1]:.6f}. "
              f"Wall time of the whole run (load, {len(hf)} epochs, evaluations), HF + PEFT / loraqa: {walls(d)}.")
    print()


def seeds(out):
    names = sorted((n for n in os.listdir(out) if n.startswith("seed-")), key=lambda n: int(n[5:]))
    rows = []
    for n in names:
        hf, lq = hf_evals(os.path.join(out, n)), lq_records(os.path.join(out, n), "eval")
        if hf and lq and len(hf) == len(lq):
            tr = lq_records(os.path.join(out, n), "train")
            per = len(tr) // len(lq)
            last = statistics.mean(r["loss"] for r in tr[-per:]) if per else float("nan")
            rows.append((n[5:], hf, lq, walls(os.path.join(out, n)), (hf[-1]["train_loss"], last)))
    if not rows:
        return
    print("### The recipe as users run it (dropout on), by seed\n")
    epochs = len(rows[0][1])
    print("| seed | " + " | ".join(f"epoch {e + 1} HF / loraqa F1" for e in range(epochs)) +
          " | final EM HF / loraqa | final F1 HF / loraqa | last epoch's train loss HF / loraqa | wall time HF / loraqa |")
    print("|---" * (epochs + 5) + "|")
    for s, hf, lq, w, tl in rows:
        cells = [f"{h['f1']:.2f} / {l['f1']:.2f}" for h, l in zip(hf, lq)]
        print(f"| {s} | " + " | ".join(cells) +
              f" | {hf[-1]['exact_match']:.2f} / {lq[-1]['exact_match']:.2f} | {hf[-1]['f1']:.2f} / {lq[-1]['f1']:.2f} | {tl[0]:.3f} / {tl[1]:.3f} | {w} |")
    hem = [r[1][-1]["exact_match"] for r in rows]
    hf1 = [r[1][-1]["f1"] for r in rows]
    lem = [r[2][-1]["exact_match"] for r in rows]
    lf1 = [r[2][-1]["f1"] for r in rows]
    print("| mean ± sd |" + " |" * epochs + f" {mean_sd(hem)} / {mean_sd(lem)} | {mean_sd(hf1)} / {mean_sd(lf1)} |"
          f" {mean_sd([r[4][0] for r in rows])} / {mean_sd([r[4][1] for r in rows])} | |")
    print(f"\nOver {len(rows)} seeds: loraqa − HF + PEFT = {statistics.mean(lem) - statistics.mean(hem):+.2f} EM, "
          f"{statistics.mean(lf1) - statistics.mean(hf1):+.2f} F1 (final epoch, means).\n")


def single(out, name, title):
    ev = lq_records(os.path.join(out, name), "eval")
    if not ev:
        return
    line = lq_data_line(os.path.join(out, name))
    print(f"### {title}\n")
    if line:
        print(f"`{line}`\n")
    print("| epoch | EM | F1 | eval loss |")
    print("|---|---|---|---|")
    for r in ev:
        print(f"| {r['epoch']} | {r['exact_match']:.2f} | {r['f1']:.2f} | {r['eval_loss']:.4f} |")
    print()


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "out/quality"
    if not os.path.isdir(out):
        sys.exit(f"quality_report: {out}: no such directory (run scripts/quality.sh {out} first)")
    lockstep(out, "lockstep", "Lockstep: same initial adapter, same batches, dropout off")
    lockstep(out, "lockstep-dropout", "Lockstep with dropout on: same initial adapter, same batches, same dropout masks")
    seeds(out)
    single(out, "random", "Random-weights baseline (loraqa, MiniLM's shape, random weights)")
    single(out, "joined-truncate", "Joined context, truncate mode")
    single(out, "joined-windows", "Joined context, windows mode")


if __name__ == "__main__":
    main()
