"""Reference check: load a loraqa adapter with HF PEFT (or a merged model with
transformers) and compare its logits with loraqa's.

stdin: {"base": DIR, "adapter": DIR|null, "merged": DIR|null,
        "input_ids": [[...]], "attention_mask": [[...]],
        "start_logits": [[...]], "end_logits": [[...]]}
stdout: {"max_abs_diff": float, "architecture": str}
"""
import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch  # noqa: E402
from transformers import AutoModelForQuestionAnswering  # noqa: E402


def main():
    req = json.load(sys.stdin)
    if req.get("merged"):
        model = AutoModelForQuestionAnswering.from_pretrained(req["merged"])
    else:
        from peft import PeftModel

        base = AutoModelForQuestionAnswering.from_pretrained(req["base"])
        model = PeftModel.from_pretrained(base, req["adapter"])
    model.eval()
    ids = torch.tensor(req["input_ids"])
    mask = torch.tensor(req["attention_mask"])
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask)
    d = max(
        (out.start_logits - torch.tensor(req["start_logits"])).abs().max().item(),
        (out.end_logits - torch.tensor(req["end_logits"])).abs().max().item(),
    )
    arch = type(model).__name__ if req.get("merged") else type(model.base_model.model).__name__
    json.dump({"max_abs_diff": d, "architecture": arch}, sys.stdout)


if __name__ == "__main__":
    main()
