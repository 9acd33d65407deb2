#!/usr/bin/env python3
"""loraqa's Python reference benchmark: HF transformers DistilBertForQuestionAnswering + PEFT LoRA.

The counterpart of `loraqa bench train|infer` (scripts/bench_compare.sh runs both):

  --mode train   one training step as HF's Trainer takes it, on random tokens:
                 forward with start/end positions (the loss) -> backward ->
                 clip_grad_norm_(1.0) -> AdamW step (lr 2e-5, weight decay 0.01, no decay
                 for biases and LayerNorm weights) -> linear schedule step -> zero_grad
  --mode infer   eval-mode forward latency (no_grad), batch --batch (default 1)

  --dtype bf16   forward (and with it the loss) under torch.autocast(<device type>, bfloat16);
                 the weights, gradients and optimizer stay fp32, as HF's Trainer does with --bf16
  --dtype int8   infer on the CPU: the base's linears (LoRA's base_layer, k_lin, out_lin, lin1, lin2)
                 through torch.ao.quantization.quantize_dynamic with per_channel_dynamic_qconfig, and
                 the word embeddings with float_qparams_weight_only_qconfig, on the fbgemm engine;
                 LoRA A/B and qa_outputs stay fp32 (loraqa's --dtype int8; torch.ao's activations
                 get 7 bits, loraqa's 8 where the CPU has avx512_vnni)
  --device cuda  on the GPU (cuda or cuda:N): torch.cuda.synchronize() before each step's clock
                 starts and before it stops; the JSON adds the device memory allocated after each
                 step (device_mem_mb, MiB) and the peak (device_peak_mem_mb, torch.cuda.max_memory_allocated)
  --shape tiny   loraqa's tiny shape (dim 32, 2 layers, 4 heads, FFN 64, 128 positions) for quick runs

Model (--shape distilbert-base, the default): distilbert-base shapes (dim 768, 6 layers, 12 heads, FFN 3072, vocab 30522, max
positions 512, the config's default dropouts), random init; PEFT LoRA r 16, alpha 32,
dropout 0.05 on q_lin and v_lin, task QUESTION_ANS (qa_outputs trained too).
Runs under transformers 4.30 + PEFT 0.6 (torch 2.1) and transformers 5 + PEFT 0.21.

Prints one JSON object on stdout (progress goes to stderr): median step seconds,
examples/s, peak RSS (ru_maxrss), the versions and the essentials of torch.__config__.show().
"""
import argparse
import json
import os
import platform
import re
import resource
import statistics
import sys
import time


def peak_rss_mb():
    # ru_maxrss: KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def torch_build(torch):
    """The lines of torch.__config__.show() that say how fast the CPU path can be."""
    show = torch.__config__.show()
    out = {}
    for key in ("BLAS_INFO", "LAPACK_INFO", "USE_MKL", "USE_MKLDNN", "USE_OPENMP", "TORCH_VERSION"):
        m = re.search(r"\b" + key + r"=([^,\s]+)", show)
        if m:
            out[key.lower()] = m.group(1)
    for key, pat in (("mkl", r"Math Kernel Library Version ([^\n]+)"),
                     ("onednn", r"MKL-DNN (v[^\s]+)"),
                     ("openmp", r"OpenMP (\d+)"),
                     ("cpu_capability_usage", r"CPU capability usage: (\S+)")):
        m = re.search(pat, show)
        if m:
            out[key] = m.group(1).strip()
    cpu = getattr(torch.backends, "cpu", None)
    if cpu is not None and hasattr(cpu, "get_cpu_capability"):
        out["cpu_capability"] = cpu.get_cpu_capability()
    out["mkldnn_available"] = torch.backends.mkldnn.is_available()
    try:
        out["mkldnn_bf16_supported"] = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        pass
    return out


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


SHAPES = {  # loraqa's shapes (cmd/loraqa/initcmd.go shapeConfig)
    "distilbert-base": dict(dim=768, n_layers=6, n_heads=12, hidden_dim=3072, max_position_embeddings=512),
    "small": dict(dim=128, n_layers=2, n_heads=4, hidden_dim=512, max_position_embeddings=512),
    "tiny": dict(dim=32, n_layers=2, n_heads=4, hidden_dim=64, max_position_embeddings=128),
}


def build_model(torch, a):
    from transformers import DistilBertConfig, DistilBertForQuestionAnswering
    from peft import LoraConfig, TaskType, get_peft_model

    torch.manual_seed(a.seed)
    cfg = DistilBertConfig(vocab_size=30522, **SHAPES[a.shape])  # dropouts: the defaults (0.1)
    base = DistilBertForQuestionAnswering(cfg)
    lora = LoraConfig(task_type=TaskType.QUESTION_ANS, r=16, lora_alpha=32, lora_dropout=0.05,
                      target_modules=["q_lin", "v_lin"])
    # transformers 5 picks SDPA attention where it can; 4.30's DistilBERT has only its own (eager)
    a.attention = getattr(base.config, "_attn_implementation", None) or "eager"
    return cfg, base, get_peft_model(base, lora).to(a.device)


def random_inputs(torch, gen, batch, seq, vocab, labels, device):
    ids = torch.randint(1000, vocab, (batch, seq), generator=gen)
    ids[:, 0] = 101   # [CLS]
    ids[:, -1] = 102  # [SEP]
    x = {"input_ids": ids, "attention_mask": torch.ones(batch, seq, dtype=torch.long)}
    if labels:
        start = torch.randint(1, seq - 1, (batch,), generator=gen)
        x["start_positions"] = start
        x["end_positions"] = torch.minimum(start + torch.randint(0, 16, (batch,), generator=gen),
                                           torch.tensor(seq - 2))
    return {k: v.to(device) for k, v in x.items()}


def param_groups(torch, model, weight_decay):
    """HF Trainer's groups: weight decay for every trainable weight except biases and
    LayerNorm parameters (written out here: the helper moved between transformers releases)."""
    decay, no_decay = [], []
    for mod in model.modules():
        for name, p in mod.named_parameters(recurse=False):
            if not p.requires_grad:
                continue
            if isinstance(mod, torch.nn.LayerNorm) or name.endswith("bias"):
                no_decay.append(p)
            else:
                decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def autocast(torch, dtype, device):
    if dtype == "bf16":
        return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
    import contextlib
    return contextlib.nullcontext()


def is_cuda(device):
    return device.startswith("cuda")


def sync(torch, device):
    """GPU work is asynchronous: a step's clock starts and stops with the device idle."""
    if is_cuda(device):
        torch.cuda.synchronize(device)


def run_train(torch, a):
    from transformers import get_linear_schedule_with_warmup

    cfg, _, model = build_model(torch, a)
    model.train()
    groups = param_groups(torch, model, a.weight_decay)
    params = [p for g in groups for p in g["params"]]
    opt = torch.optim.AdamW(groups, lr=a.lr, betas=(0.9, 0.999), eps=1e-8)
    total = a.warmup + a.steps
    sched = get_linear_schedule_with_warmup(opt, num_warmup_steps=0, num_training_steps=total)
    gen = torch.Generator().manual_seed(a.seed + 1)
    batches = [random_inputs(torch, gen, a.batch, a.seq, cfg.vocab_size, True, a.device) for _ in range(total)]

    times, losses, mem = [], [], []
    for i, x in enumerate(batches):
        sync(torch, a.device)
        t0 = time.perf_counter()
        with autocast(torch, a.dtype, a.device):
            loss = model(**x).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, a.max_grad_norm)
        opt.step()
        sched.step()
        model.zero_grad(set_to_none=True)
        sync(torch, a.device)
        dt = time.perf_counter() - t0
        losses.append(loss.item())
        if is_cuda(a.device):
            mem.append(torch.cuda.memory_allocated(a.device) / 2**20)
        if i >= a.warmup:
            times.append(dt)
        print(f"step {i + 1}/{total}: {dt:.3f} s loss {losses[-1]:.4f}{' (warmup)' if i < a.warmup else ''}",
              file=sys.stderr, flush=True)
    med = statistics.median(times)
    extra = {"device_mem_mb": mem} if mem else {}
    return {
        **extra,
        "step_seconds": times, "median_step_s": med, "mean_step_s": statistics.fmean(times),
        "examples_per_s": a.batch / med, "tokens_per_s": a.batch * a.seq / med, "losses": losses,
        "trainable_params": sum(p.numel() for p in params),
        "total_params": sum(p.numel() for p in model.parameters()),
        "recipe": {"optimizer": "torch.optim.AdamW", "lr": a.lr, "weight_decay": a.weight_decay,
                   "no_decay": "biases, LayerNorm", "max_grad_norm": a.max_grad_norm,
                   "scheduler": "linear, no warmup", "lora": "r 16, alpha 32, dropout 0.05, q_lin v_lin"},
    }


def quantize_base(torch, model):
    """loraqa's --dtype int8: every linear of the frozen base dynamically quantized (int8 weights
    per output row, activations per call) and the word embeddings stored in 8 bits per row, the
    LoRA weights and the QA head left in fp32."""
    from torch.ao.quantization import (float_qparams_weight_only_qconfig, per_channel_dynamic_qconfig,
                                       quantize_dynamic)

    torch.backends.quantized.engine = "fbgemm"
    spec = {name: per_channel_dynamic_qconfig for name, mod in model.named_modules()
            if isinstance(mod, torch.nn.Linear) and "lora_" not in name and "qa_outputs" not in name}
    linears = len(spec)
    spec.update({name: float_qparams_weight_only_qconfig for name, mod in model.named_modules()
                 if isinstance(mod, torch.nn.Embedding) and name.endswith("word_embeddings")})
    return quantize_dynamic(model, spec, dtype=torch.qint8), linears


def run_infer(torch, a):
    cfg, _, model = build_model(torch, a)
    model.eval()
    quantized = 0
    if a.dtype == "int8":
        model, quantized = quantize_base(torch, model)
    gen = torch.Generator().manual_seed(a.seed + 1)
    x = random_inputs(torch, gen, a.batch, a.seq, cfg.vocab_size, False, a.device)
    times = []
    with torch.no_grad():
        for i in range(a.warmup + a.steps):
            sync(torch, a.device)
            t0 = time.perf_counter()
            with autocast(torch, a.dtype, a.device):
                out = model(**x)
            out.start_logits.sum().item()  # the answer is read, as a caller would
            dt = time.perf_counter() - t0
            if i >= a.warmup:
                times.append(dt)
            print(f"forward {i + 1}/{a.warmup + a.steps}: {dt * 1000:.1f} ms{' (warmup)' if i < a.warmup else ''}",
                  file=sys.stderr, flush=True)
    med = statistics.median(times)
    extra = {"quantized_linears": quantized} if a.dtype == "int8" else {}
    return {**extra, "step_seconds": times, "median_step_s": med, "mean_step_s": statistics.fmean(times),
            "latency_ms_median": med * 1000, "examples_per_s": a.batch / med}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=["train", "infer"], required=True)
    ap.add_argument("--dtype", choices=["fp32", "bf16", "int8"], default="fp32")
    ap.add_argument("--batch", type=int, help="default: 8 (train), 1 (infer)")
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--shape", choices=sorted(SHAPES), default="distilbert-base")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    ap.add_argument("--steps", type=int, default=6, help="timed steps (train) or forwards (infer)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    ap.add_argument("--lr", type=float, default=2e-5)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--max-grad-norm", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()
    if a.batch is None:
        a.batch = 8 if a.mode == "train" else 1
    if a.steps < 1 or a.warmup < 0 or a.batch < 1 or not 4 <= a.seq <= SHAPES[a.shape]["max_position_embeddings"]:
        ap.error("need --steps >= 1, --warmup >= 0, --batch >= 1, 4 <= --seq <= the shape's positions")
    if a.dtype == "int8" and (a.mode != "infer" or is_cuda(a.device)):
        ap.error("--dtype int8 is for --mode infer on the CPU")

    import torch
    import transformers
    import peft
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    if is_cuda(a.device):
        if not torch.cuda.is_available():
            ap.error("--device %s: torch.cuda.is_available() is false" % a.device)
        torch.cuda.reset_peak_memory_stats(a.device)

    t0 = time.time()
    res = (run_train if a.mode == "train" else run_infer)(torch, a)
    out = {"impl": "hf-peft", "mode": a.mode, "dtype": a.dtype, "device": a.device, "shape": a.shape, "batch": a.batch, "seq": a.seq,
           "steps": a.steps, "warmup": a.warmup, "threads": torch.get_num_threads(),
           "interop_threads": torch.get_num_interop_threads()}
    out.update(res)
    out["attention"] = a.attention
    if is_cuda(a.device):
        out.update({"device_peak_mem_mb": torch.cuda.max_memory_allocated(a.device) / 2**20,
                    "gpu": torch.cuda.get_device_name(a.device), "cuda": torch.version.cuda})
    out.update({"peak_rss_mb": peak_rss_mb(), "wall_s": time.time() - t0,
                "torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
                "python": platform.python_version(), "cpu": cpu_model(), "cpus": os.cpu_count(),
                "torch_build": torch_build(torch)})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
