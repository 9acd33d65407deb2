"""Writes a BERT extractive-QA + LoRA fixture in the layout of
../shared/fixtures/README.md (base/, adapter/, expected.json, train_step.json),
made with HF transformers 4.30 + PEFT 0.6: a small random BertForQuestionAnswering
(biases and LayerNorms perturbed so none can be dropped), a LoRA adapter on
query/value with non-zero lora_B and its own qa_outputs, golden logits of
base, base + adapter and merged, and three AdamW steps (dropouts 0).
BERT inputs carry token_type_ids (0 question, 1 context), stored with each batch.

PEFT 0.6's PeftModelForQuestionAnswering.forward does not pass token_type_ids on
to the model (every token then gets type 0), so the adapter's logits and the
training steps are computed through the LoRA-injected model itself
(peft_model.base_model), which receives them.

usage: make_bert_fixture.py OUT [--seed 0]
"""
import argparse
import json
import os
import shutil

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch  # noqa: E402
from torch import nn  # noqa: E402

HP = dict(lr=1e-3, betas=[0.9, 0.999], eps=1e-8, weight_decay=0.01, steps=3)


def batch(g, B, L, vocab, real):
    ids = torch.randint(5, vocab, (B, L), generator=g)
    mask = torch.ones(B, L, dtype=torch.long)
    tt = torch.zeros(B, L, dtype=torch.long)
    for i in range(B):
        n = real[i]
        q = 3 + i
        ids[i, 0], ids[i, q] = 2, 3  # [CLS] q [SEP]
        ids[i, n - 1] = 3
        tt[i, q + 1:n] = 1
        ids[i, n:] = 0
        mask[i, n:] = 0
    return ids, mask, tt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    import transformers
    import peft
    from transformers import BertConfig, BertForQuestionAnswering
    from transformers.pytorch_utils import ALL_LAYERNORM_LAYERS
    from transformers.trainer_pt_utils import get_parameter_names
    from peft import LoraConfig, PeftModel, TaskType, get_peft_model
    from safetensors.torch import save_file

    if os.path.exists(a.out):
        shutil.rmtree(a.out)
    base_dir = os.path.join(a.out, "base")
    os.makedirs(base_dir)
    torch.manual_seed(a.seed)
    cfg = BertConfig(vocab_size=1000, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=64, max_position_embeddings=64, type_vocab_size=2,
                     initializer_range=0.2, pad_token_id=0)
    base = BertForQuestionAnswering(cfg)
    g = torch.Generator().manual_seed(a.seed + 1000)
    with torch.no_grad():
        for m in base.modules():
            if isinstance(m, nn.Linear) and m.bias is not None:
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.02)
            elif isinstance(m, nn.LayerNorm):
                m.weight.copy_(1.0 + 0.1 * torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(0.05 * torch.randn(m.bias.shape, generator=g))
    base.eval()
    cfg.save_pretrained(base_dir)
    sd = {k: v.contiguous() for k, v in base.state_dict().items() if "position_ids" not in k}
    save_file(sd, os.path.join(base_dir, "model.safetensors"), metadata={"format": "pt"})

    lcfg = LoraConfig(task_type=TaskType.QUESTION_ANS, r=4, lora_alpha=8, lora_dropout=0.0,
                      target_modules=["query", "value"])
    import copy
    pm = get_peft_model(copy.deepcopy(base), lcfg)
    g2 = torch.Generator().manual_seed(a.seed + 2000)
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=g2) * 0.02)
            if "modules_to_save.default" in n:
                p.copy_(torch.randn(p.shape, generator=g2) * (0.2 if n.endswith("weight") else 0.02))
    pm.eval()
    pm.save_pretrained(os.path.join(a.out, "adapter"), safe_serialization=True)
    os.remove(os.path.join(a.out, "adapter", "README.md"))
    merged = copy.deepcopy(pm).merge_and_unload().eval()

    gb = torch.Generator().manual_seed(a.seed + 3000)
    batches = []
    for name, B, L, real in (("padded_pair_batch", 2, 24, [24, 17]), ("single", 1, 20, [20]), ("max_length", 1, 64, [64])):
        ids, mask, tt = batch(gb, B, L, cfg.vocab_size, real)
        e = dict(name=name, input_ids=ids.tolist(), attention_mask=mask.tolist(), token_type_ids=tt.tolist())
        for label, m in (("base", base), ("base_plus_adapter", pm.base_model), ("merged", merged)):
            with torch.no_grad():
                o = m(input_ids=ids, attention_mask=mask, token_type_ids=tt)
            e[label] = dict(start_logits=o.start_logits.tolist(), end_logits=o.end_logits.tolist())
        batches.append(e)
    produced = dict(torch=torch.__version__, transformers=transformers.__version__, peft=peft.__version__)
    with open(os.path.join(a.out, "expected.json"), "w") as f:
        json.dump(dict(format_version=1, produced_with=produced, dtype="float32", mode="eval", tolerance_abs=1e-4,
                       model=dict(model_type="bert", hidden_size=32, layers=2, heads=4, vocab_size=1000),
                       lora=dict(r=4, lora_alpha=8, scaling=2.0, target_modules=["query", "value"]),
                       batches=batches), f)

    # training reference from disk, dropouts 0
    tb = batches[0]
    b2 = BertForQuestionAnswering.from_pretrained(base_dir, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = PeftModel.from_pretrained(b2, os.path.join(a.out, "adapter"), is_trainable=True)
    model.train()
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    decay = {n for n in get_parameter_names(model, ALL_LAYERNORM_LAYERS) if "bias" not in n}
    opt = torch.optim.AdamW([{"params": [p for n, p in named if n in decay], "weight_decay": HP["weight_decay"]},
                             {"params": [p for n, p in named if n not in decay], "weight_decay": 0.0}],
                            lr=HP["lr"], betas=tuple(HP["betas"]), eps=HP["eps"], foreach=False)
    key = lambda n: n.replace(".modules_to_save.default.", ".").replace(".default.", ".")  # noqa: E731
    ids, mask, tt = (torch.tensor(tb[k]) for k in ("input_ids", "attention_mask", "token_type_ids"))
    sp, ep = torch.tensor([5, 9]), torch.tensor([7, 12])
    losses, norms, grads1 = [], [], {}
    for step in range(HP["steps"]):
        out = model.base_model(input_ids=ids, attention_mask=mask, token_type_ids=tt, start_positions=sp, end_positions=ep)
        out.loss.backward()
        norms.append(torch.norm(torch.stack([p.grad.detach().norm(2) for _, p in named]), 2).item())
        if step == 0:
            grads1 = {key(n): p.grad.detach().clone().tolist() for n, p in named}
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(out.loss.item())
    with torch.no_grad():
        after = model.base_model(input_ids=ids, attention_mask=mask, token_type_ids=tt, start_positions=sp, end_positions=ep).loss.item()
    with open(os.path.join(a.out, "train_step.json"), "w") as f:
        json.dump(dict(format_version=1, produced_with=produced, dtype="float32",
                       hyperparameters=dict(HP, optimizer="torch.optim.AdamW", dropout=0.0),
                       batch=dict(name=tb["name"], input_ids=tb["input_ids"], attention_mask=tb["attention_mask"],
                                  token_type_ids=tb["token_type_ids"], start_positions=sp.tolist(), end_positions=ep.tolist()),
                       tolerance_abs=dict(loss=1e-5, grad_norm=1e-4, grads_step1=1e-5, params_after=1e-5),
                       noise_dominated=dict(keys=["base_model.model.qa_outputs.bias"], tolerance_abs=HP["steps"] * HP["lr"]),
                       trainable={key(n): dict(shape=list(p.shape), weight_decay=(n in decay)) for n, p in named},
                       loss_before_step=losses[0], losses=losses, loss_after_steps=after, grad_norm_step1=norms[0],
                       grad_norms=norms, grads_step1=grads1,
                       params_after={key(n): p.detach().tolist() for n, p in named}), f)


if __name__ == "__main__":
    main()
