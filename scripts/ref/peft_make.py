"""Reference adapter maker: builds a LoRA adapter with HF PEFT (the reference
environment's version) on a base QA model, gives it non-trivial weights, saves
it, and reports its logits, its merged logits and, optionally, a few AdamW
training steps (all dropout off), so that loraqa can be compared with PEFT.

stdin: {"base": DIR, "out": DIR, "config": {LoraConfig kwargs},
        "seed": int, "input_ids": [[...]], "attention_mask": [[...]],
        "train": {"steps": int, "lr": float, "weight_decay": float,
                  "start_positions": [...], "end_positions": [...], "out": DIR} | null}
stdout: {"start_logits", "end_logits", "merged_start_logits", "merged_end_logits",
         "losses": [...], "warnings": [...]}

Non-trivial weights: lora_B ~ N(0, 0.05); with DoRA the magnitude vector is
scaled by 1 + N(0, 0.1); with lora_bias lora_B.bias ~ N(0, 0.05); with bias
"all"/"lora_only" every trainable bias gets N(0, 0.05) added.
"""
import copy
import json
import os
import sys
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch  # noqa: E402
from transformers import AutoModelForQuestionAnswering  # noqa: E402


def main():
    req = json.load(sys.stdin)
    from peft import LoraConfig, get_peft_model

    torch.set_num_threads(1)
    torch.manual_seed(req.get("seed", 0))
    base = AutoModelForQuestionAnswering.from_pretrained(req["base"], attn_implementation="eager")
    cfg = LoraConfig(task_type="QUESTION_ANS", **req["config"])
    model = get_peft_model(base, cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not p.requires_grad:
                continue
            if "lora_B" in name:
                p.normal_(0, 0.05)
            elif "lora_magnitude_vector" in name:
                p.mul_(1 + 0.1 * torch.randn_like(p))
            elif name.endswith("bias") and "modules_to_save" not in name and "original_module" not in name:
                p.add_(0.05 * torch.randn_like(p))
    model.save_pretrained(req["out"])
    ids = torch.tensor(req["input_ids"])
    mask = torch.tensor(req["attention_mask"])
    model.eval()
    res = {}
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask)
        res["start_logits"], res["end_logits"] = out.start_logits.tolist(), out.end_logits.tolist()
        merged = copy.deepcopy(model).merge_and_unload()
        out = merged(input_ids=ids, attention_mask=mask)
        res["merged_start_logits"], res["merged_end_logits"] = out.start_logits.tolist(), out.end_logits.tolist()
    tr = req.get("train")
    if tr:
        for mod in model.modules():
            if isinstance(mod, torch.nn.Dropout):
                mod.p = 0.0
        model.train()
        params = [p for p in model.parameters() if p.requires_grad]
        decay = [p for n, p in model.named_parameters() if p.requires_grad and "bias" not in n]
        nodecay = [p for n, p in model.named_parameters() if p.requires_grad and "bias" in n]
        opt = torch.optim.AdamW(
            [{"params": decay, "weight_decay": tr["weight_decay"]}, {"params": nodecay, "weight_decay": 0.0}],
            lr=tr["lr"], betas=(0.9, 0.999), eps=1e-8,
        )
        assert len(decay) + len(nodecay) == len(params)
        losses = []
        for _ in range(tr["steps"]):
            out = model(input_ids=ids, attention_mask=mask,
                        start_positions=torch.tensor(tr["start_positions"]), end_positions=torch.tensor(tr["end_positions"]))
            losses.append(out.loss.item())
            out.loss.backward()
            opt.step()
            opt.zero_grad()
        res["losses"] = losses
        model.save_pretrained(tr["out"])
    json.dump(res, sys.stdout)


if __name__ == "__main__":
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        main()
