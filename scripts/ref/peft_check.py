"""Reference check: load a loraqa adapter with HF PEFT (or a merged model with
transformers) and compare its logits with loraqa's.

stdin: {"base": DIR, "adapter": DIR|null, "merged": DIR|null,
        "input_ids": [[...]], "attention_mask": [[...]], "token_type_ids": [[...]]|null,
        "start_logits": [[...]], "end_logits": [[...]],
        "dropout_seed": int|null, "lora_dropout": float|null}
stdout: {"max_abs_diff": float, "architecture": str, "warnings": [str],
         "dropout_calls": int}

"warnings" are the messages Python's warnings module and the "peft" and
"transformers" loggers emitted while the adapter (or merged model) loaded: a
file loraqa writes must load without any.

With "dropout_seed" the forward runs in train mode (every dropout on, LoRA
dropout "lora_dropout") through the LoRA model itself (PEFT 0.6's
PeftModelForQuestionAnswering would drop token_type_ids), with
torch.nn.functional.dropout replaced by the counter-based dropout of loraqa's
internal/counterdropout (see counter_mask): loraqa, using the same one, draws the
same masks, call for call, whatever random generator either side has.
"dropout_calls" counts the calls.

{"dropout_probe": {"seed": int, "calls": int, "n": int, "p": float}} prints
{"zeros": [[...], ...]}: the dropped indices of counter_mask's first calls.
"""
import json
import logging
import os
import sys
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import numpy as np  # noqa: E402
import torch  # noqa: E402
from transformers import AutoModelForQuestionAnswering  # noqa: E402


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


M64 = (1 << 64) - 1
PHI, C_CALL = 0x9E3779B97F4A7C15, 0xD1B54A32D192ED03


def counter_uniform(seed, call, n):
    """loraqa's counterdropout.CounterUniform for indices 0..n-1: the splitmix64 finaliser
    of seed*phi + call*c + index + phi (uint64, wrapping), top 53 bits / 2**53."""
    z = np.arange(n, dtype=np.uint64) + np.uint64((seed * PHI + call * C_CALL + PHI) & M64)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


def counter_mask(seed, call, n, p):
    """The float32 mask of loraqa's counterdropout.CounterMask: 0 where dropped, else float32(1/(1-p))."""
    return np.where(counter_uniform(seed, call, n) >= p, np.float32(1.0 / (1.0 - p)), np.float32(0)).astype(np.float32)


def patch_dropout(seed):
    """Replaces torch.nn.functional.dropout (which nn.Dropout and transformers'
    eager attention call) by the counter-based dropout; returns the call counter."""
    calls = [0]

    def dropout(input, p=0.5, training=True, inplace=False):
        if not training or p == 0:
            return input
        m = torch.from_numpy(counter_mask(seed, calls[0], input.numel(), p)).reshape(input.shape).to(input.dtype)
        calls[0] += 1
        return input.mul_(m) if inplace else input * m

    torch.nn.functional.dropout = dropout
    return calls


def main():
    req = json.load(sys.stdin)
    if req.get("dropout_probe"):
        pr = req["dropout_probe"]
        zeros = [np.flatnonzero(counter_mask(pr["seed"], k, pr["n"], pr["p"]) == 0).tolist() for k in range(pr["calls"])]
        json.dump({"zeros": zeros}, sys.stdout)
        return
    coll = _Collect()
    for name in ("peft", "transformers"):
        logging.getLogger(name).addHandler(coll)
    caught = warnings.catch_warnings(record=True)
    rec = caught.__enter__()
    warnings.simplefilter("always")
    # Eager attention: the dropout on the attention probabilities then goes
    # through torch.nn.functional.dropout (the counter dropout, in train mode),
    # where loraqa's explicit attention path puts it; SDPA would draw it inside
    # the fused kernel.
    kw = {"attn_implementation": "eager"}
    if req.get("merged"):
        model = AutoModelForQuestionAnswering.from_pretrained(req["merged"], **kw)
    else:
        from peft import PeftModel

        base = AutoModelForQuestionAnswering.from_pretrained(req["base"], **kw)
        model = PeftModel.from_pretrained(base, req["adapter"])
    caught.__exit__(None, None, None)
    msgs = [str(w.message) for w in rec if not issubclass(w.category, (FutureWarning, DeprecationWarning))] + coll.messages
    model.eval()
    ids = torch.tensor(req["input_ids"])
    mask = torch.tensor(req["attention_mask"])
    calls = [0]
    if req.get("dropout_seed") is not None:
        p = req.get("lora_dropout") or 0.0
        for mod in model.modules():
            if hasattr(mod, "lora_dropout"):  # PEFT builds nn.Identity for p 0
                mod.lora_dropout["default"] = torch.nn.Dropout(p) if p > 0 else torch.nn.Identity()
        model.train()
        calls = patch_dropout(req["dropout_seed"])
        x = dict(input_ids=ids, attention_mask=mask)
        if req.get("token_type_ids") is not None:
            x["token_type_ids"] = torch.tensor(req["token_type_ids"])
        with torch.no_grad():
            out = model.base_model(**x)
    else:
        with torch.no_grad():
            out = model(input_ids=ids, attention_mask=mask)
    d = max(
        (out.start_logits - torch.tensor(req["start_logits"])).abs().max().item(),
        (out.end_logits - torch.tensor(req["end_logits"])).abs().max().item(),
    )
    arch = type(model).__name__ if req.get("merged") else type(model.base_model.model).__name__
    json.dump({"max_abs_diff": d, "architecture": arch, "warnings": msgs, "dropout_calls": calls[0]}, sys.stdout)


if __name__ == "__main__":
    main()
