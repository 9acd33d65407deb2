"""Reference check: load a loraqa adapter with HF PEFT (or a merged model with
transformers) and compare its logits with loraqa's.

stdin: {"base": DIR, "adapter": DIR|null, "merged": DIR|null,
        "input_ids": [[...]], "attention_mask": [[...]], "token_type_ids": [[...]]|null,
        "start_logits": [[...]], "end_logits": [[...]],
        "train_seed": int|null, "lora_dropout": float|null}
stdout: {"max_abs_diff": float, "architecture": str, "warnings": [str]}

"warnings" are the messages Python's warnings module and the "peft" and
"transformers" loggers emitted while the adapter (or merged model) loaded: a
file loraqa writes must load without any.

With "train_seed" the forward runs in train mode (every dropout on, LoRA dropout
"lora_dropout") right after torch.manual_seed(train_seed), on one thread, through
the LoRA model itself (PEFT 0.6's PeftModelForQuestionAnswering would drop
token_type_ids): loraqa, seeded alike, draws the same dropout masks.
"""
import json
import logging
import os
import sys
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch  # noqa: E402
from transformers import AutoModelForQuestionAnswering  # noqa: E402


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def dropout_probe():
    """Zero positions of dropout(ones(2, 5, 8), 0.1) right after manual_seed(7):
    the train-mode comparison needs loraqa's LibTorch to draw the same masks."""
    torch.set_num_threads(1)
    torch.manual_seed(7)
    y = torch.nn.functional.dropout(torch.ones(2, 5, 8), 0.1, True)
    return [i for i, v in enumerate(y.flatten().tolist()) if v == 0]


def main():
    req = json.load(sys.stdin)
    if req.get("dropout_probe"):
        json.dump({"zeros": dropout_probe(), "torch": torch.__version__}, sys.stdout)
        return
    coll = _Collect()
    for name in ("peft", "transformers"):
        logging.getLogger(name).addHandler(coll)
    caught = warnings.catch_warnings(record=True)
    rec = caught.__enter__()
    warnings.simplefilter("always")
    # Eager attention: the dropout on the attention probabilities then sits
    # where loraqa (and transformers 4.x) put it, drawing the same mask; SDPA
    # would draw it inside the fused kernel.
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
    if req.get("train_seed") is not None:
        p = req.get("lora_dropout") or 0.0
        for mod in model.modules():
            if hasattr(mod, "lora_dropout"):  # PEFT builds nn.Identity for p 0
                mod.lora_dropout["default"] = torch.nn.Dropout(p) if p > 0 else torch.nn.Identity()
        model.train()
        torch.set_num_threads(1)
        torch.manual_seed(req["train_seed"])
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
    json.dump({"max_abs_diff": d, "architecture": arch, "warnings": msgs}, sys.stdout)


if __name__ == "__main__":
    main()
