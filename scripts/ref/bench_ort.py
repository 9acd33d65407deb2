#!/usr/bin/env python3
"""ONNX Runtime (CPU) inference latency of a merged extractive-QA model: the anchor that
scripts/bench_compare.sh's ort-* runs set `loraqa bench infer --merged` against.

The model: --model DIR, an HF DistilBERT/BERT question-answering directory (what
`loraqa export` writes: the adapter merged into the base), or --shape NAME, a
DistilBertForQuestionAnswering of bench_hf.py's shapes (distilbert-base: dim 768, 6 layers,
12 heads, FFN 3072, vocab 30522) with random weights (--seed), as `loraqa bench infer
--merged` builds it. Prepared once per model in --cache (a child process, so that torch is
not in the measured process): the HF dir (--shape), model.onnx (torch.onnx.export, the
TorchScript exporter, eager attention, opset 17, batch and sequence dynamic), and the
variants' files. What --variant runs:

  plain     model.onnx; the session's graph optimisations at ORT_ENABLE_ALL, nothing else
  fused     onnxruntime.transformers.optimizer.optimize_model(model_type "bert", the model's
            heads and hidden size): Attention, EmbedLayerNormalization, SkipLayerNormalization,
            BiasGelu fusions (their counts are in the JSON: "fusions"), then ORT_ENABLE_ALL
  int8      the fused model through onnxruntime.quantization.quantize_dynamic: QInt8 weights
            per channel, activations quantized per call, MatMul and Attention (the encoder's
            linears; the embeddings and the 2-wide QA head stay fp32, as in loraqa's --dtype int8)
  torch     the same merged model in PyTorch (transformers' default attention), eval, no_grad
(No HF pipeline: transformers 5 removed the "question-answering" task from pipeline().)

Inputs: random token ids of --batch x --seq (as bench_hf.py and loraqa bench infer make
them), or one real query: --question Q --context C --tokenizer DIR (vocab.txt; WordPiece,
lowercased) tokenized as HF's QA preprocessing does (question, context; at most --max-seq tokens),
batch 1 and --seq its token count (--count-tokens prints {"seq": N} and exits).
ORT runs with --threads intra-op threads, one inter-op thread, sequential execution, the CPU
execution provider; torch with torch.set_num_threads(--threads).

Prints one JSON object on stdout (progress goes to stderr), as bench_hf.py does: median step
seconds (median_step_s, latency_ms_median), examples_per_s, tokens_per_s, peak RSS
(ru_maxrss of this process, which imports onnxruntime and numpy but not torch, for the
ORT variants), the versions, and what the preparation did. No network: HF_HUB_OFFLINE=1.
"""
import argparse
import hashlib
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bench_hf import SHAPES, cpu_model  # noqa: E402  (the shapes and the CPU line, shared; bench_hf imports torch only when it runs)

VARIANTS = ("plain", "fused", "int8", "torch")
ONNX_FILE = {"plain": "model.onnx", "fused": "model-fused.onnx", "int8": "model-fused-int8.onnx"}
OPSET = 17


def log(msg):
    print(f"bench_ort: {msg}", file=sys.stderr, flush=True)


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


# ---------------------------------------------------------------- the cache


def cache_dir(a):
    """One directory per model: the shape and seed, or the model dir's path and weights."""
    if a.shape:
        key = f"{a.shape}-seed{a.seed}"
    else:
        real = os.path.realpath(a.model)
        h = hashlib.sha256(real.encode())
        for name in sorted(os.listdir(real)):
            if name.endswith((".safetensors", ".bin", "config.json")):
                st = os.stat(os.path.join(real, name))
                h.update(f"{name}:{st.st_size}:{st.st_mtime_ns}".encode())
        key = f"{os.path.basename(real.rstrip('/')) or 'model'}-{h.hexdigest()[:12]}"
    return os.path.join(a.cache, key)


def read_meta(d):
    try:
        with open(os.path.join(d, "meta.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def write_meta(d, meta):
    tmp = os.path.join(d, "meta.json.tmp")
    with open(tmp, "w") as f:
        json.dump(meta, f, indent=1)
    os.replace(tmp, os.path.join(d, "meta.json"))


def model_dir(a, d):
    return os.path.join(d, "model") if a.shape else a.model


def prepare(a, d, want):
    """Makes what --variant needs in d: the HF dir, model.onnx, model-fused.onnx,
    model-fused-int8.onnx (each once; the later ones from the earlier)."""
    import torch
    import transformers
    from transformers import AutoConfig, AutoModelForQuestionAnswering

    os.makedirs(d, exist_ok=True)
    meta = read_meta(d)
    meta.setdefault("source", f"--shape {a.shape} --seed {a.seed} (random weights)" if a.shape else os.path.realpath(a.model))
    mdir = model_dir(a, d)
    if a.shape and not os.path.isfile(os.path.join(mdir, "config.json")):
        from transformers import DistilBertConfig, DistilBertForQuestionAnswering
        log(f"random {a.shape} DistilBertForQuestionAnswering (seed {a.seed}) -> {mdir}")
        torch.manual_seed(a.seed)
        m = DistilBertForQuestionAnswering(DistilBertConfig(vocab_size=30522, **SHAPES[a.shape]))
        tmp = mdir + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        m.save_pretrained(tmp)
        shutil.rmtree(mdir, ignore_errors=True)
        os.replace(tmp, mdir)
    cfg = AutoConfig.from_pretrained(mdir)
    heads = getattr(cfg, "n_heads", None) or cfg.num_attention_heads
    hidden = getattr(cfg, "dim", None) or cfg.hidden_size
    meta.update({"model_type": cfg.model_type, "num_heads": heads, "hidden_size": hidden,
                 "layers": getattr(cfg, "n_layers", None) or cfg.num_hidden_layers,
                 "max_positions": cfg.max_position_embeddings})

    onnx_path = os.path.join(d, ONNX_FILE["plain"])
    if not os.path.isfile(onnx_path):
        # eager attention: its MatMul/Softmax pattern is what the transformers optimizer fuses
        # into Attention (the SDPA graph and the dynamo exporter's graph do not fuse)
        m = AutoModelForQuestionAnswering.from_pretrained(mdir, attn_implementation="eager").eval()
        names = ["input_ids", "attention_mask"]
        if cfg.model_type != "distilbert" and getattr(cfg, "type_vocab_size", 0):
            names.append("token_type_ids")
        ids = torch.randint(1000, min(cfg.vocab_size, 30000), (2, 16))
        ex = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids)}
        dyn = {n: {0: "batch", 1: "seq"} for n in names + ["start_logits", "end_logits"]}

        class Wrap(torch.nn.Module):  # positional inputs -> the two logits tensors
            def __init__(self, inner):
                super().__init__()
                self.inner = inner

            def forward(self, *xs):
                out = self.inner(**dict(zip(names, xs)))
                return out.start_logits, out.end_logits

        log(f"torch.onnx.export (TorchScript exporter, opset {OPSET}) -> {onnx_path}")
        t0 = time.time()
        tmp = onnx_path + ".tmp.onnx"
        with torch.no_grad():
            torch.onnx.export(Wrap(m), tuple(ex[n] for n in names), tmp, input_names=names,
                              output_names=["start_logits", "end_logits"], dynamic_axes=dyn,
                              opset_version=OPSET, do_constant_folding=True, dynamo=False)
        os.replace(tmp, onnx_path)
        meta["export"] = {"exporter": "torch.onnx.export(dynamo=False)", "opset": OPSET, "inputs": names,
                          "attention": "eager", "seconds": round(time.time() - t0, 2),
                          "torch": torch.__version__, "transformers": transformers.__version__}
        write_meta(d, meta)

    fused_path = os.path.join(d, ONNX_FILE["fused"])
    if want in ("fused", "int8") and not os.path.isfile(fused_path):
        from onnxruntime.transformers import optimizer
        log(f"onnxruntime.transformers.optimizer (bert, {heads} heads, hidden {hidden}) -> {fused_path}")
        om = optimizer.optimize_model(onnx_path, model_type="bert", num_heads=heads, hidden_size=hidden,
                                      opt_level=0, use_gpu=False)
        stats = {k: v for k, v in om.get_fused_operator_statistics().items() if v}
        tmp = fused_path + ".tmp.onnx"
        om.save_model_to_file(tmp)
        os.replace(tmp, fused_path)
        meta["fusions"] = stats
        log(f"fusions: {stats}")
        if not stats.get("Attention") and not stats.get("MultiHeadAttention"):
            log("warning: no Attention fusion (the fused variant is then little more than plain)")
        write_meta(d, meta)

    int8_path = os.path.join(d, ONNX_FILE["int8"])
    if want == "int8" and not os.path.isfile(int8_path):
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic
        g = onnx.load(fused_path, load_external_data=False).graph
        inits = {i.name: list(i.dims) for i in g.initializer}
        # the QA head (a [hidden, 2] weight) stays fp32, as loraqa's --dtype int8 leaves qa_outputs
        head = [n.name for n in g.node if n.op_type == "MatMul" and any(
            len(inits.get(x, [])) == 2 and inits[x][-1] == 2 for x in n.input)]
        log(f"quantize_dynamic (QInt8 weights, per channel; MatMul, Attention; fp32: {head}) -> {int8_path}")
        tmp = int8_path + ".tmp.onnx"
        quantize_dynamic(fused_path, tmp, op_types_to_quantize=["MatMul", "Attention"], per_channel=True,
                         weight_type=QuantType.QInt8, nodes_to_exclude=head,
                         # the fused graph's com.microsoft ops defeat ONNX shape inference
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        os.replace(tmp, int8_path)
        q = onnx.load(int8_path, load_external_data=False).graph
        ops = {}
        for n in q.node:
            if n.op_type in ("DynamicQuantizeMatMul", "MatMulInteger", "QAttention", "DynamicQuantizeLinear"):
                ops[n.op_type] = ops.get(n.op_type, 0) + 1
        meta["quantized"] = {"weight_type": "QInt8", "per_channel": True, "op_types": ["MatMul", "Attention"],
                             "fp32": head, "int8_ops": ops}
        write_meta(d, meta)
    return meta


# ---------------------------------------------------------------- the inputs


def load_tokenizer(path):
    from tokenizers import BertWordPieceTokenizer
    vocab = os.path.join(path, "vocab.txt")
    if not os.path.isfile(vocab):
        raise SystemExit(f"bench_ort: error: no {vocab} (--tokenizer DIR: a WordPiece vocab.txt)")
    return BertWordPieceTokenizer(vocab, lowercase=True)


def real_query(a):
    """The question and context as HF's QA preprocessing feeds them: [CLS] q [SEP] c [SEP], the
    context cut to --max-seq tokens in all."""
    tok = load_tokenizer(a.tokenizer)
    tok.enable_truncation(max_length=a.max_seq, strategy="only_second")
    enc = tok.encode(a.question, a.context)
    return enc.ids, enc.type_ids


def inputs(a, names, vocab):
    import numpy as np
    if a.question:
        ids, types = real_query(a)
        x = {"input_ids": np.array([ids], dtype=np.int64), "token_type_ids": np.array([types], dtype=np.int64)}
    else:
        rng = np.random.default_rng(a.seed + 1)
        ids = rng.integers(1000, vocab, size=(a.batch, a.seq), dtype=np.int64)
        ids[:, 0], ids[:, -1] = 101, 102  # [CLS], [SEP]
        x = {"input_ids": ids, "token_type_ids": np.zeros_like(ids)}
    x["attention_mask"] = np.ones_like(x["input_ids"])
    return {n: x[n] for n in names}


# ---------------------------------------------------------------- the runs


def timed(a, fn, what):
    times = []
    for i in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        if i >= a.warmup:
            times.append(dt)
        log(f"{what} {i + 1}/{a.warmup + a.steps}: {dt * 1000:.1f} ms{' (warmup)' if i < a.warmup else ''}")
    return times


def run_ort(a, d, meta):
    import numpy as np
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    path = os.path.join(d, ONNX_FILE[a.variant])
    t0 = time.perf_counter()
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    load_s = time.perf_counter() - t0
    names = [i.name for i in sess.get_inputs()]
    x = inputs(a, names, 30000)
    log(f"{a.variant}: {os.path.basename(path)}, inputs {names} {list(x['input_ids'].shape)}")

    def step():
        start, _ = sess.run(["start_logits", "end_logits"], x)
        float(np.sum(start))  # the answer is read, as a caller would
    return x["input_ids"].shape, timed(a, step, "run"), {
        "onnxruntime": ort.__version__, "providers": sess.get_providers(), "onnx_file": path,
        "session_load_s": load_s, "graph_optimization_level": "ORT_ENABLE_ALL",
        "intra_op_threads": a.threads, "inter_op_threads": 1}


def run_torch(a, d, meta):
    import torch
    import transformers
    from transformers import AutoModelForQuestionAnswering
    torch.set_num_threads(a.threads)
    m = AutoModelForQuestionAnswering.from_pretrained(model_dir(a, d)).eval()
    names = meta["export"]["inputs"] if "export" in meta else ["input_ids", "attention_mask"]
    x = {k: torch.from_numpy(v) for k, v in inputs(a, names, 30000).items()}
    extra = {"torch": torch.__version__, "transformers": transformers.__version__,
             "attention": getattr(m.config, "_attn_implementation", None), "threads": torch.get_num_threads()}

    def step():
        with torch.no_grad():
            out = m(**x)
        out.start_logits.sum().item()  # the answer is read, as a caller would
    return x["input_ids"].shape, timed(a, step, "forward"), extra


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="a merged HF DistilBERT/BERT QA model dir (loraqa export writes one)")
    src.add_argument("--shape", choices=sorted(SHAPES), help="a random-weight DistilBERT QA model of this shape")
    ap.add_argument("--variant", choices=VARIANTS, default="plain")
    ap.add_argument("--cache", default="out/ort-cache", help="where the exported models are kept (default %(default)s)")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seq", type=int, default=384)
    ap.add_argument("--question", help="a real query (with --context and --tokenizer): batch 1, its token count")
    ap.add_argument("--context")
    ap.add_argument("--tokenizer", help="dir with the WordPiece vocab.txt (default: --model)")
    ap.add_argument("--max-seq", type=int, default=384, help="the real query's token limit (default %(default)s)")
    ap.add_argument("--count-tokens", action="store_true", help="print {\"seq\": N} of the real query and exit")
    ap.add_argument("--steps", type=int, default=10, help="timed runs")
    ap.add_argument("--warmup", type=int, default=2, help="untimed runs first")
    ap.add_argument("--threads", type=int, default=2, help="intra-op threads (torch.set_num_threads for torch)")
    ap.add_argument("--seed", type=int, default=42, help="the random weights (--shape) and tokens")
    ap.add_argument("--prepare-only", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.tokenizer is None and a.model:
        a.tokenizer = a.model
    if a.model and not os.path.isfile(os.path.join(a.model, "config.json")):
        ap.error(f"--model {a.model}: no config.json (an HF model dir, e.g. from loraqa export)")
    if bool(a.question) != bool(a.context) or (a.question and not a.tokenizer):
        ap.error("a real query needs --question, --context and --tokenizer")
    if a.shape:
        positions = SHAPES[a.shape]["max_position_embeddings"]
    else:
        with open(os.path.join(a.model, "config.json")) as f:
            positions = json.load(f).get("max_position_embeddings", a.max_seq)
    a.max_seq = min(a.max_seq, positions)
    if a.count_tokens:
        if not a.question:
            ap.error("--count-tokens needs --question, --context and --tokenizer")
        print(json.dumps({"seq": len(real_query(a)[0])}))
        return
    if a.steps < 1 or a.warmup < 0 or a.batch < 1 or a.threads < 1 or a.seq < 4:
        ap.error("need --steps >= 1, --warmup >= 0, --batch >= 1, --threads >= 1, --seq >= 4")
    if not a.question and a.seq > positions:
        ap.error(f"--seq {a.seq}: the model has {positions} positions")

    d = cache_dir(a)
    if a.prepare_only:
        prepare(a, d, a.variant)
        return
    need = ONNX_FILE.get(a.variant, "model.onnx")
    if a.variant == "torch":
        need = "model.onnx"  # the HF dir and the export meta (the input names)
    if not os.path.isfile(os.path.join(d, need)):
        # torch stays out of the measured process: the export runs in a child
        cmd = [sys.executable, os.path.abspath(__file__), "--prepare-only", "--variant", a.variant,
               "--cache", a.cache, "--seed", str(a.seed), "--seq", str(min(a.seq, positions))]
        cmd += ["--shape", a.shape] if a.shape else ["--model", a.model]
        t0 = time.time()
        rc = subprocess.run(cmd, stdout=sys.stderr).returncode
        if rc != 0:
            sys.exit(f"bench_ort: error: preparing {a.variant} in {d} failed (exit status {rc})")
        log(f"prepared {need} in {time.time() - t0:.1f} s")
    meta = read_meta(d)

    t0 = time.time()
    shape, times, extra = (run_ort if a.variant in ONNX_FILE else run_torch)(a, d, meta)
    med = statistics.median(times)
    batch, seq = int(shape[0]), int(shape[1])
    out = {"impl": "ort" if a.variant in ONNX_FILE else "hf-" + a.variant, "variant": a.variant, "mode": "infer",
           "model": meta.get("source"), "shape": a.shape, "batch": batch, "seq": seq,
           "real_query": bool(a.question), "steps": a.steps, "warmup": a.warmup, "threads": a.threads,
           "step_seconds": times, "median_step_s": med, "mean_step_s": statistics.fmean(times),
           "latency_ms_median": med * 1000, "examples_per_s": batch / med, "tokens_per_s": batch * seq / med}
    out.update(extra)
    keys = {"plain": ["export"], "fused": ["export", "fusions"], "int8": ["export", "fusions", "quantized"]}
    for k in keys.get(a.variant, ["export"]):
        if k in meta:
            out[k] = meta[k]
    out.update({"peak_rss_mb": peak_rss_mb(), "wall_s": time.time() - t0, "python": platform.python_version(),
                "cpu": cpu_model(), "cpus": os.cpu_count()})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
