#!/usr/bin/env python3
"""torch.ao.quantization.quantize_dynamic on the CPU: the reference for loraqa's int8 linears
(torch/qlinear_test.go) and int8 models (verify/int8_test.go).

stdin, one of:
  {"linear": {"weight": [[out x in]], "bias": [out] | null, "x": [flat], "x_shape": [.., in]},
   "engine": "fbgemm" | "x86", "reduce_range": true | false}
      an nn.Linear with these values, quantized by quantize_dynamic with per_channel_dynamic_qconfig
      (int8 weights per output row, activations quantized per call: to 7 bits with reduce_range, as
      torch.ao's dynamic Linear always calls quantized::linear_dynamic, else to 8)
  {"model": DIR, "batches": [{"input_ids": [[..]], "attention_mask": [[..]]}], "engine": ..., "reduce_range": ...}
      AutoModelForQuestionAnswering from DIR (float32, eval) with every nn.Linear but qa_outputs
      quantized the same way
stdout: {"y": [flat], "y_fp32": [flat], "scales": [out], "qweight": [[out x in] int8]}  (linear)
        {"batches": [{"start": [[..]], "end": [[..]]}]}                            (model)
        and "torch", "engine" in both
"""
import json
import sys

import torch
from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear
from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic


def quantize(model, reduce_range=True):
    q = quantize_dynamic(model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)
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


def model(req, reduce_range):
    from transformers import AutoModelForQuestionAnswering

    m = AutoModelForQuestionAnswering.from_pretrained(req["model"], torch_dtype=torch.float32).eval()
    qa = m.qa_outputs
    m = quantize(m, reduce_range)
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
    return {"batches": out, "quantized_linears": n}


def main():
    req = json.load(sys.stdin)
    engine = req.get("engine", "fbgemm")
    if engine not in torch.backends.quantized.supported_engines:
        raise SystemExit(f"quantized engine {engine} not in {torch.backends.quantized.supported_engines}")
    torch.backends.quantized.engine = engine
    torch.manual_seed(0)
    reduce_range = req.get("reduce_range", True)
    res = linear(req["linear"], reduce_range) if "linear" in req else model(req, reduce_range)
    res["torch"], res["engine"] = torch.__version__, torch.backends.quantized.engine
    json.dump(res, sys.stdout)


if __name__ == "__main__":
    main()
