#!/usr/bin/env python3
"""torch.ao.quantization.quantize_dynamic on the CPU: the reference for loraqa's int8 linears
(torch/qlinear_test.go) and int8 models (verify/int8_test.go).

stdin, one of:
  {"linear": {"weight": [[out x in]], "bias": [out] | null, "x": [flat], "x_shape": [.., in]},
   "engine": "fbgemm" | "x86", "reduce_range": true | false}
      an nn.Linear with these values, quantized by quantize_dynamic with per_channel_dynamic_qconfig
      (int8 weights per output row, activations quantized per call: to 7 bits with reduce_range, as
      torch.ao's dynamic Linear always calls quantized::linear_dynamic, else to 8)
  {"embedding": {"table": [[rows x dim]], "ids": [..]}, "engine": ...}
      an nn.Embedding with this table, quantized by quantize_dynamic with
      float_qparams_weight_only_qconfig (8 bits per row, float scale and zero point)
  {"model": DIR, "batches": [{"input_ids": [[..]], "attention_mask": [[..]]}], "engine": ..., "reduce_range": ...}
      AutoModelForQuestionAnswering from DIR (float32, eval) with every nn.Linear but qa_outputs
      quantized the same way, and the word embeddings as an embedding above
stdout: {"y": [flat], "y_fp32": [flat], "scales": [out], "qweight": [[out x in] int8]}  (linear)
        {"y": [flat], "y_fp32": [flat]}                                            (embedding)
        {"batches": [{"start": [[..]], "end": [[..]]}]}                            (model)
        and "torch", "engine" in each
"""
import json
import sys

import torch
from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear
from torch.ao.quantization import float_qparams_weight_only_qconfig, per_channel_dynamic_qconfig, quantize_dynamic


def quantize(model, reduce_range=True, embedding=None):
    """model with its linears quantized, and the nn.Embedding at the module path embedding too."""
    spec = {torch.nn.Linear: per_channel_dynamic_qconfig}
    if embedding is not None:
        spec[embedding] = float_qparams_weight_only_qconfig
    q = quantize_dynamic(model, spec, dtype=torch.qint8)
    if not reduce_range:
        for mod in q.modules():
            if isinstance(mod, DynamicLinear):
                mod.forward = eight_bit_forward(mod)
    return q


def eight_bit_forward(mod):
    """mod's forward with the activations quantized to 8 bits: the op torch.ao's dynamic Linear
    calls, with reduce_range=False."""
    def forward(x):
        y = torch.ops.quantized.linear_dynamic(x, mod._packed_params._packed_params, reduce_range=False)
        return y.to(x.dtype)
    return forward


def linear(req, reduce_range):
    w = torch.tensor(req["weight"], dtype=torch.float32)
    b = req.get("bias")
    lin = torch.nn.Linear(w.shape[1], w.shape[0], bias=b is not None)
    with torch.no_grad():
        lin.weight.copy_(w)
        if b is not None:
            lin.bias.copy_(torch.tensor(b, dtype=torch.float32))
    x = torch.tensor(req["x"], dtype=torch.float32).reshape(req["x_shape"])
    q = quantize(torch.nn.Sequential(lin), reduce_range)[0]
    with torch.no_grad():
        y, y32 = q(x), lin(x)
    qw = q.weight()
    return {"y": y.flatten().tolist(), "y_fp32": y32.flatten().tolist(),
            "scales": qw.q_per_channel_scales().tolist(), "qweight": qw.int_repr().tolist(),
            "module": type(q).__module__ + "." + type(q).__name__}


def embedding(req):
    w = torch.tensor(req["table"], dtype=torch.float32)
    emb = torch.nn.Embedding(w.shape[0], w.shape[1])
    with torch.no_grad():
        emb.weight.copy_(w)
    ids = torch.tensor(req["ids"], dtype=torch.int64)
    q = quantize(torch.nn.Sequential(emb), embedding="0")[0]
    with torch.no_grad():
        y, y32 = q(ids), emb(ids)
    return {"y": y.flatten().tolist(), "y_fp32": y32.flatten().tolist(),
            "module": type(q).__module__ + "." + type(q).__name__}


def model(req, reduce_range):
    from transformers import AutoModelForQuestionAnswering

    m = AutoModelForQuestionAnswering.from_pretrained(req["model"], torch_dtype=torch.float32).eval()
    qa = m.qa_outputs
    m = quantize(m, reduce_range, embedding=m.base_model_prefix + ".embeddings.word_embeddings")
    m.qa_outputs = qa  # the QA head stays float32, as in loraqa
    out = []
    with torch.no_grad():
        for b in req["batches"]:
            kw = {"input_ids": torch.tensor(b["input_ids"]), "attention_mask": torch.tensor(b["attention_mask"])}
            if b.get("token_type_ids") is not None:
                kw["token_type_ids"] = torch.tensor(b["token_type_ids"])
            r = m(**kw)
            out.append({"start": r.start_logits.tolist(), "end": r.end_logits.tolist()})
    n = sum(1 for mod in m.modules() if type(mod).__name__ == "Linear" and "quantized" in type(mod).__module__)
    e = sum(1 for mod in m.modules() if type(mod).__name__ == "Embedding" and "quantized" in type(mod).__module__)
    return {"batches": out, "quantized_linears": n, "quantized_embeddings": e}


def main():
    req = json.load(sys.stdin)
    engine = req.get("engine", "fbgemm")
    if engine not in torch.backends.quantized.supported_engines:
        raise SystemExit(f"quantized engine {engine} not in {torch.backends.quantized.supported_engines}")
    torch.backends.quantized.engine = engine
    torch.manual_seed(0)
    reduce_range = req.get("reduce_range", True)
    if "linear" in req:
        res = linear(req["linear"], reduce_range)
    elif "embedding" in req:
        res = embedding(req["embedding"])
    else:
        res = model(req, reduce_range)
    res["torch"], res["engine"] = torch.__version__, torch.backends.quantized.engine
    json.dump(res, sys.stdout)


if __name__ == "__main__":
    main()
