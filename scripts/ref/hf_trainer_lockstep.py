"""HF Trainer lockstep reference (train/trainer_lockstep_test.go): runs
transformers.Trainer itself on QA features given as JSON, so that loraqa's
trainer can be compared with it step by step.

Both sides start from the same adapter: this script makes it with PEFT
(get_peft_model, lora_B ~ N(0, 0.05) so that lora_A has a gradient from the
first step), saves it to "init" before training, trains it with Trainer and
saves the trained adapter to "out". Every dropout is off (the model's and
LoRA's), since loraqa's LibTorch and this torch draw different masks.

Trainer runs with the seed's defaults unless "args" overrides them: lr 2e-5,
batch 8, weight decay 0.01, per-epoch evaluation, linear schedule without
warmup, max_grad_norm 1, the default optimizer (transformers 5 with torch
>= 2.8: adamw_torch_fused, torch.optim.AdamW(fused=True)), and logging_steps 1
so that log_history holds every step's loss. The batch order is loraqa's: "order" lists
each epoch's feature indices, which a sampler with set_epoch hands to the
Trainer's dataloader; the indices each training batch actually held are
reported back ("seen") for the caller to check.

stdin: {"base": DIR, "init": DIR, "out": DIR, "work": DIR, "seed": int,
        "lora": {LoraConfig kwargs}, "args": {TrainingArguments overrides},
        "train": [{"input_ids", "attention_mask", "token_type_ids", "start", "end"}],
        "eval": [...], "order": [[epoch 1 indices], [epoch 2 indices], ...]}
stdout: {"train": [{"step", "loss", "grad_norm", "learning_rate", "epoch"}],
         "eval": [{"step", "eval_loss", "epoch"}], "seen": [[indices], ...],
         "optim": str, "decay": [names], "no_decay": [names], "warnings": [...]}
"""
import contextlib
import json
import os
import sys
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch  # noqa: E402


class FeatureSet(torch.utils.data.Dataset):
    def __init__(self, feats):
        self.feats = feats

    def __len__(self):
        return len(self.feats)

    def __getitem__(self, i):
        return dict(self.feats[i], idx=i)


class PlanSampler(torch.utils.data.Sampler):
    """Yields epoch e's indices from the given plan; the Trainer's dataloader
    calls set_epoch before every epoch."""

    def __init__(self, order):
        self.order = order
        self.epoch = 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return len(self.order[0])

    def __iter__(self):
        return iter(self.order[self.epoch])


def collate(batch):
    """Pads to the batch's longest feature, as loraqa's batcher (pad id 0)."""
    n = max(len(f["input_ids"]) for f in batch)

    def pad(key):
        return torch.tensor([f[key] + [0] * (n - len(f[key])) for f in batch])

    return dict(input_ids=pad("input_ids"), attention_mask=pad("attention_mask"),
                token_type_ids=pad("token_type_ids"),
                start_positions=torch.tensor([f["start"] for f in batch]),
                end_positions=torch.tensor([f["end"] for f in batch]),
                idx=torch.tensor([f["idx"] for f in batch]))


def main(req):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForQuestionAnswering, Trainer, TrainingArguments

    torch.set_num_threads(1)
    torch.manual_seed(req.get("seed", 0))
    cfg = AutoConfig.from_pretrained(req["base"])
    cfg.hidden_dropout_prob = 0.0
    cfg.attention_probs_dropout_prob = 0.0
    base = AutoModelForQuestionAnswering.from_pretrained(req["base"], config=cfg, attn_implementation="eager")
    model = get_peft_model(base, LoraConfig(task_type="QUESTION_ANS", lora_dropout=0.0, **req["lora"]))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.requires_grad and "lora_B" in name:
                p.normal_(0, 0.05)
    model.save_pretrained(req["init"])

    class LockstepTrainer(Trainer):
        seen = []

        def _get_train_sampler(self, train_dataset=None):
            return PlanSampler(req["order"])

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            idx = inputs.pop("idx")
            if model.training:
                self.seen.append(idx.tolist())
            return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)

    kw = dict(output_dir=req["work"], learning_rate=2e-5, per_device_train_batch_size=8,
              per_device_eval_batch_size=8, weight_decay=0.01, num_train_epochs=2, eval_strategy="epoch",
              logging_strategy="steps", logging_steps=1, save_strategy="no", report_to="none", use_cpu=True,
              seed=req.get("seed", 0), remove_unused_columns=False, dataloader_num_workers=0,
              label_names=["start_positions", "end_positions"])
    kw.update(req.get("args", {}))
    args = TrainingArguments(**kw)
    trainer = LockstepTrainer(model=model, args=args, train_dataset=FeatureSet(req["train"]),
                              eval_dataset=FeatureSet(req["eval"]), data_collator=collate)
    trainer.train()
    model.save_pretrained(req["out"])

    decay = set(trainer.get_decay_parameter_names(model))
    trained = [n for n, p in model.named_parameters() if p.requires_grad]
    res = dict(train=[], eval=[], seen=LockstepTrainer.seen, optim=str(args.optim.value),
               decay=[n for n in trained if n in decay], no_decay=[n for n in trained if n not in decay])
    for h in trainer.state.log_history:
        if "loss" in h:
            res["train"].append({k: h[k] for k in ("step", "loss", "grad_norm", "learning_rate", "epoch")})
        elif "eval_loss" in h:
            res["eval"].append({k: h[k] for k in ("step", "eval_loss", "epoch")})
    return res


if __name__ == "__main__":
    request = json.load(sys.stdin)
    # Trainer prints its logs on stdout; the JSON answer is the only stdout.
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(sys.stderr):
        warnings.simplefilter("always")
        result = main(request)
    result["warnings"] = [str(w.message) for w in caught]
    json.dump(result, sys.stdout)
