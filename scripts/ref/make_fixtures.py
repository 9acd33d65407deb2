"""Writes the fixtures loraqa's tests compare with: small random extractive-QA
models with a PEFT LoRA adapter and golden outputs made by HF transformers +
PEFT, in the layout verify/ reads (base/, adapter/, expected.json, train_step.json).

  make_fixtures.py bert OUT [--seed 0]
      a BertForQuestionAnswering fixture (vocab 1000, random token ids, with
      token_type_ids): the committed testdata/tiny-bert-qa.
  make_fixtures.py distilbert OUT --vocab VOCAB [--seed 0]
      the tiny DistilBERT fixture (tiny-distilbert-qa): DistilBertForQuestionAnswering,
      dim 32, 2 layers, 4 heads, hidden 64, 128 positions, the 30,522-token
      bert-base-uncased vocabulary VOCAB, real question/context pairs; also
      base/pytorch_model.bin and adapter_bin/ (the same tensors saved with torch.save).
  make_fixtures.py roberta OUT --bpe BPE [--seed 0]
      the tiny RoBERTa fixture (tiny-roberta-qa): RobertaForQuestionAnswering,
      dim 32, 2 layers, 4 heads, hidden 64, 130 positions (128 tokens: positions
      start at pad_token_id + 1 = 2, as roberta-base's 514 take 512), type_vocab_size
      1, the byte-level BPE tokenizer BPE (make_bpe_vocab.py's roberta-bpe/: its
      files are copied into base/, model_max_length 128), real question/context
      pairs padded with <pad> (id 1); also base/pytorch_model.bin and adapter_bin/.
  make_fixtures.py tokenizer OUT --vocab VOCAB
      a tokenizer directory: VOCAB as vocab.txt and HF's tokenizer.json for it
      (no tokenizer_config.json: the settings are HF's defaults).
  make_fixtures.py testdata OUT --vocab VOCAB
      everything the Go tests read from the generated test data:
      OUT/tiny-distilbert-qa and OUT/tokenizer (make reference -> scripts/make-testdata.sh).

VOCAB is the bert-base-uncased vocab.txt (sha256 07eced37...); the Go module
github.com/sugarme/tokenizer (a loraqa dependency) ships it as
pretrained/model/bert-base-uncased-vocab.txt.

Recipe (both models): torch.manual_seed(seed) then the model's own init with
initializer_range 0.2; every Linear bias drawn from N(0, 0.02) and every
LayerNorm set to 1 + N(0, 0.1) / N(0, 0.05) from a generator seeded seed+1000,
so that no bias and no LayerNorm can be dropped unnoticed; a LoRA adapter r 4,
alpha 8 (q_lin/v_lin, query/value: PEFT's defaults) whose lora_B is drawn from N(0, 0.02) and
whose own qa_outputs copy is drawn anew (generator seed+2000); golden logits of
base, base + adapter and merged in eval mode; three AdamW steps (lr 1e-3,
weight decay 0.01 except biases and LayerNorms, dropouts 0) on the first batch,
from the files on disk. Everything runs on one CPU thread in float32, and
attention runs in transformers' eager implementation.

Re-executes itself with PYTHONHASHSEED=0: PEFT writes target_modules from a
set, and its order must not change from run to run.
"""
import os
import sys

if os.environ.get("PYTHONHASHSEED") != "0":
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable] + sys.argv)

import argparse  # noqa: E402
import copy  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
import warnings  # noqa: E402

warnings.simplefilter("ignore", FutureWarning)
import torch  # noqa: E402
from torch import nn  # noqa: E402

HP = dict(lr=1e-3, betas=[0.9, 0.999], eps=1e-8, weight_decay=0.01, steps=3)
VOCAB_SHA256 = "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"
VOCAB_SIZE = 30522
EAGER = {"attn_implementation": "eager"}

# (question, context, answer): each answer is a verbatim substring of its context.
PAIR_BATCH = [
    ("What was the total revenue in 2019?",
     "The company reported total revenue of $4.2 billion in 2019, an increase of 12 percent "
     "over the prior year.",
     "$4.2 billion"),
    ("Who is the chief executive officer?",
     "Maria Lopez has served as chief executive officer since March 2015.",
     "Maria Lopez"),
]
SINGLE = [
    ("When was the quarterly dividend paid?",
     "The quarterly dividend of 25 cents per share was paid on June 30, 2020 to shareholders "
     "of record.",
     "June 30, 2020"),
]
LONG = [
    ("What drove the increase in operating expenses?",
     "Operating expenses increased to $1,284.6 million in fiscal 2021 from $1,097.3 million in "
     "fiscal 2020, primarily due to higher personnel costs associated with increased headcount, "
     "including the employees who joined through the acquisition of Northwind Analytics in the "
     "second quarter. Research and development expenses rose 18% as the company continued to "
     "invest in its cloud platform, data-center capacity and security features. Sales and "
     "marketing expenses grew at a slower pace, reflecting a return to in-person events and the "
     "caf\u00e9-style customer briefings held at regional offices in Z\u00fcrich, S\u00e3o Paulo "
     "and Montr\u00e9al. General and administrative expenses were broadly flat, as savings from "
     "the consolidation of facilities offset legal fees related to ongoing litigation. "
     "Depreciation and amortization increased by $41.2 million, mainly because of the "
     "amortization of acquired intangible assets. Management expects operating expenses to grow "
     "more slowly next year, as the integration of the acquired business is completed and hiring "
     "returns to a normal rate. The company also noted that foreign-currency movements reduced "
     "reported expenses by approximately 1.5 percentage points, and that stock-based "
     "compensation, which is excluded from its non-GAAP measures, totaled $212.9 million for the "
     "year. Restructuring charges of $8.7 million were recorded in the fourth quarter in "
     "connection with the closure of two smaller sites.",
     "higher personnel costs associated with increased headcount"),
]
TEXT_BATCHES = [("padded_pair_batch", PAIR_BATCH), ("single", SINGLE), ("max_length", LONG)]


# ----------------------------------------------------------------------------- shared steps

def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def read_vocab(path):
    """The bert-base-uncased vocabulary: its bytes and token -> id (line number)."""
    if sha256(path) != VOCAB_SHA256:
        sys.exit(f"make_fixtures: {path} is not the bert-base-uncased vocab.txt (sha256 {VOCAB_SHA256})")
    with open(path, "rb") as f:
        raw = f.read()
    vocab = {}
    for i, tok in enumerate(raw.decode("utf-8").split("\n")[:VOCAB_SIZE]):
        vocab[tok] = i
    assert len(vocab) == VOCAB_SIZE, len(vocab)
    return raw, vocab


def hf_tokenizer(cls, vocab, vocab_path, **kw):
    """A fast WordPiece tokenizer class built on the vocabulary. transformers 5 takes
    the vocabulary itself (vocab=); 4.x reads vocab_file."""
    import transformers

    if int(transformers.__version__.split(".")[0]) >= 5:
        return cls(vocab=dict(vocab), **kw)
    return cls(vocab_file=vocab_path, **kw)


def perturb(model, seed):
    """HF's init leaves Linear biases at 0 and LayerNorms at (1, 0): randomise them."""
    g = torch.Generator().manual_seed(seed + 1000)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Linear) and m.bias is not None:
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.02)
            elif isinstance(m, nn.LayerNorm):
                m.weight.copy_(1.0 + 0.1 * torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(0.05 * torch.randn(m.bias.shape, generator=g))


def make_adapter(base, targets, seed, head_std):
    """A PEFT LoRA model (r 4, alpha 8) on a copy of base: lora_B from N(0, 0.02), the
    adapter's own qa_outputs drawn anew, so that the adapter changes every logit."""
    from peft import LoraConfig, TaskType, get_peft_model

    lcfg = LoraConfig(task_type=TaskType.QUESTION_ANS, r=4, lora_alpha=8, lora_dropout=0.0,
                      target_modules=targets)
    pm = get_peft_model(copy.deepcopy(base), lcfg)
    g = torch.Generator().manual_seed(seed + 2000)
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)
        for n, p in pm.named_parameters():
            if "modules_to_save.default" in n:
                p.copy_(torch.randn(p.shape, generator=g) * (head_std if n.endswith("weight") else 0.02))
    return pm.eval()


def base_state_dict(model):
    return {k: v.detach().contiguous() for k, v in model.state_dict().items() if "position_ids" not in k}


def save_base_weights(model, base_dir, with_bin):
    from safetensors.torch import save_file

    sd = base_state_dict(model)
    save_file(sd, os.path.join(base_dir, "model.safetensors"), metadata={"format": "pt"})
    if with_bin:  # the zip format torch.save writes, as save_pretrained did before safetensors
        torch.save(sd, os.path.join(base_dir, "pytorch_model.bin"))


def peft_key(name):
    """PeftModel parameter name -> its key in adapter_model.safetensors."""
    return name.replace(".modules_to_save.default.", ".").replace(".default.", ".")


def logits_of(model, x):
    with torch.no_grad():
        o = model(**x)
    return dict(start_logits=o.start_logits.tolist(), end_logits=o.end_logits.tolist())


def train_steps(model, x, sp, ep):
    """HP["steps"] AdamW steps on one batch (HF Trainer's weight-decay groups); the
    forward goes through the LoRA-injected model (model.base_model), which keeps
    token_type_ids (PEFT 0.6's QA wrapper drops them)."""
    from transformers.pytorch_utils import ALL_LAYERNORM_LAYERS
    from transformers.trainer_pt_utils import get_parameter_names

    model.train()
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    decay = {n for n in get_parameter_names(model, ALL_LAYERNORM_LAYERS) if "bias" not in n}
    opt = torch.optim.AdamW([{"params": [p for n, p in named if n in decay], "weight_decay": HP["weight_decay"]},
                             {"params": [p for n, p in named if n not in decay], "weight_decay": 0.0}],
                            lr=HP["lr"], betas=tuple(HP["betas"]), eps=HP["eps"], foreach=False)
    losses, norms, grads1 = [], [], {}
    for step in range(HP["steps"]):
        out = model.base_model(**x, start_positions=sp, end_positions=ep)
        out.loss.backward()
        norms.append(torch.norm(torch.stack([p.grad.detach().norm(2) for _, p in named]), 2).item())
        if step == 0:
            grads1 = {peft_key(n): p.grad.detach().clone().tolist() for n, p in named}
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(out.loss.item())
    with torch.no_grad():
        after = model.base_model(**x, start_positions=sp, end_positions=ep).loss.item()
    return dict(trainable={peft_key(n): dict(shape=list(p.shape), weight_decay=(n in decay)) for n, p in named},
                loss_before_step=losses[0], losses=losses, loss_after_steps=after, grad_norm_step1=norms[0],
                grad_norms=norms, grads_step1=grads1,
                params_after={peft_key(n): p.detach().tolist() for n, p in named})


def produced_with():
    import peft
    import transformers

    return dict(torch=torch.__version__, transformers=transformers.__version__, peft=peft.__version__)


def save_base_and_adapters(out, base_dir, base, cfg, arch, targets, seed):
    """Perturbs the base (seeded), saves it with both weight files, injects a PEFT LoRA
    adapter on targets and saves it as safetensors (adapter/) and .bin (adapter_bin/);
    returns the PEFT model."""
    perturb(base, seed)
    base.eval()
    cfg.architectures = [arch]
    cfg.save_pretrained(base_dir)
    save_base_weights(base, base_dir, with_bin=True)
    pm = make_adapter(base, targets, seed, 0.2)
    pm.save_pretrained(os.path.join(out, "adapter"), safe_serialization=True)
    pm.save_pretrained(os.path.join(out, "adapter_bin"), safe_serialization=False)
    return pm


def write_train_step(out, tr, hyperparameters, batch):
    """train_step.json: the AdamW steps tr of train_steps on batch, with their tolerances."""
    write_json(dict(format_version=1, produced_with=produced_with(), dtype="float32",
                    hyperparameters=hyperparameters, batch=batch,
                    tolerance_abs=dict(loss=1e-5, grad_norm=1e-4, grads_step1=1e-5, params_after=1e-5),
                    noise_dominated=dict(keys=["base_model.model.qa_outputs.bias"], tolerance_abs=HP["steps"] * HP["lr"]),
                    **tr), os.path.join(out, "train_step.json"))


def train_on_answers(out, model, tb, **dropouts):
    """train_step.json of a fixture whose batch tb is labelled with its answers (DistilBERT, RoBERTa):
    the AdamW steps with every dropout off."""
    x = dict(input_ids=torch.tensor(tb["input_ids"]), attention_mask=torch.tensor(tb["attention_mask"]))
    sp, ep = torch.tensor(tb["answer_start_positions"]), torch.tensor(tb["answer_end_positions"])
    tr = train_steps(model, x, sp, ep)
    write_train_step(out, tr, dict(HP, optimizer="torch.optim.AdamW", amsgrad=False, dropout=0.0,
                                   attention_dropout=0.0, **dropouts, lora_dropout=0.0,
                                   lr_schedule="constant", max_grad_norm=None),
                     dict(name=tb["name"], input_ids=tb["input_ids"], attention_mask=tb["attention_mask"],
                          start_positions=sp.tolist(), end_positions=ep.tolist()))


def check_tokenizer(base_dir, batches, max_len):
    """The tokenizer files of base_dir, read by AutoTokenizer, give the batches' input ids."""
    from transformers import AutoTokenizer

    auto = AutoTokenizer.from_pretrained(base_dir)
    for b in batches:
        enc = auto(b["questions"], b["contexts"], padding=True, truncation="only_second", max_length=max_len)
        assert enc["input_ids"] == b["input_ids"], f"{base_dir} tokenizes {b['name']} otherwise"


def text_batches(tok, max_len, models, span, **enc_kw):
    """TEXT_BATCHES tokenized by tok (padded to the longest, the context cut at
    max_len), each with its answers' token spans, span(enc, i, context, answer),
    and the logits of every (label, model) of models on it."""
    batches = []
    for name, examples in TEXT_BATCHES:
        qs, cs, ans = [e[0] for e in examples], [e[1] for e in examples], [e[2] for e in examples]
        enc = tok(qs, cs, padding=True, truncation="only_second", max_length=max_len, **enc_kw)
        ids, mask = enc["input_ids"], enc["attention_mask"]
        spans = [span(enc, i, cs[i], a) for i, a in enumerate(ans)]
        if name == "max_length":
            assert len(ids[0]) == max_len, len(ids[0])
        e = dict(name=name, questions=qs, contexts=cs, answers=ans, input_ids=ids, attention_mask=mask,
                 answer_start_positions=[s for s, _ in spans], answer_end_positions=[t for _, t in spans])
        x = dict(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask))
        for label, m in models:
            e[label] = logits_of(m, x)
        batches.append(e)
    assert any(0 in row for row in batches[0]["attention_mask"]), "the pair batch must hold padding"
    return batches


def check_adapters(out, cls, base_dir, batches):
    """Both adapter files (adapter/, adapter_bin/), loaded through
    PeftModel.from_pretrained onto the base read as cls, give the batches'
    base_plus_adapter logits."""
    from peft import PeftModel

    for sub in ("adapter", "adapter_bin"):
        m = PeftModel.from_pretrained(cls.from_pretrained(base_dir, **EAGER), os.path.join(out, sub)).eval()
        for b in batches:
            got = logits_of(m, dict(input_ids=torch.tensor(b["input_ids"]), attention_mask=torch.tensor(b["attention_mask"])))
            for k in ("start_logits", "end_logits"):
                d = (torch.tensor(got[k]) - torch.tensor(b["base_plus_adapter"][k])).abs().max().item()
                assert d <= 1e-5, f"{sub} from disk: {b['name']} {k} differs by {d}"


def write_json(obj, path):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f)
        f.write("\n")


def fresh_dir(out):
    if os.path.exists(out):
        shutil.rmtree(out)
    base_dir = os.path.join(out, "base")
    os.makedirs(base_dir)
    return base_dir


# ----------------------------------------------------------------------------- BERT

def random_batch(g, B, L, vocab, real):
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


def make_bert(out, seed):
    """testdata/tiny-bert-qa: BERT inputs carry token_type_ids (0 question, 1 context)."""
    from transformers import BertConfig, BertForQuestionAnswering
    from peft import PeftModel

    base_dir = fresh_dir(out)
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=1000, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=64, max_position_embeddings=64, type_vocab_size=2,
                     initializer_range=0.2, pad_token_id=0, **EAGER)
    base = BertForQuestionAnswering(cfg)
    perturb(base, seed)
    base.eval()
    cfg.save_pretrained(base_dir)
    save_base_weights(base, base_dir, with_bin=False)
    pm = make_adapter(base, ["query", "value"], seed, 0.2)
    pm.save_pretrained(os.path.join(out, "adapter"), safe_serialization=True)
    os.remove(os.path.join(out, "adapter", "README.md"))
    merged = copy.deepcopy(pm).merge_and_unload().eval()

    gb = torch.Generator().manual_seed(seed + 3000)
    batches = []
    for name, B, L, real in (("padded_pair_batch", 2, 24, [24, 17]), ("single", 1, 20, [20]), ("max_length", 1, 64, [64])):
        ids, mask, tt = random_batch(gb, B, L, cfg.vocab_size, real)
        e = dict(name=name, input_ids=ids.tolist(), attention_mask=mask.tolist(), token_type_ids=tt.tolist())
        x = dict(input_ids=ids, attention_mask=mask, token_type_ids=tt)
        for label, m in (("base", base), ("base_plus_adapter", pm.base_model), ("merged", merged)):
            e[label] = logits_of(m, x)
        batches.append(e)
    write_json(dict(format_version=1, produced_with=produced_with(), dtype="float32", mode="eval", tolerance_abs=1e-4,
                    model=dict(model_type="bert", hidden_size=32, layers=2, heads=4, vocab_size=1000),
                    lora=dict(r=4, lora_alpha=8, scaling=2.0, target_modules=["query", "value"]),
                    batches=batches), os.path.join(out, "expected.json"))

    tb = batches[0]
    b2 = BertForQuestionAnswering.from_pretrained(base_dir, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, **EAGER)
    model = PeftModel.from_pretrained(b2, os.path.join(out, "adapter"), is_trainable=True)
    x = {k: torch.tensor(tb[k]) for k in ("input_ids", "attention_mask", "token_type_ids")}
    sp, ep = torch.tensor([5, 9]), torch.tensor([7, 12])
    tr = train_steps(model, x, sp, ep)
    write_train_step(out, tr, dict(HP, optimizer="torch.optim.AdamW", dropout=0.0),
                     dict(name=tb["name"], input_ids=tb["input_ids"], attention_mask=tb["attention_mask"],
                          token_type_ids=tb["token_type_ids"], start_positions=sp.tolist(), end_positions=ep.tolist()))


# ----------------------------------------------------------------------------- DistilBERT

def answer_span(tok, ids, answer):
    """Token positions (inclusive) of the answer's tokens inside the context."""
    ctx0 = ids.index(tok.sep_token_id) + 1
    a = tok(answer, add_special_tokens=False)["input_ids"]
    for j in range(ctx0, len(ids) - len(a) + 1):
        if ids[j:j + len(a)] == a:
            return j, j + len(a) - 1
    raise SystemExit(f"make_fixtures: the answer {answer!r} is not among the context's tokens")


def write_tokenizer_files(base_dir, raw_vocab, max_len):
    """vocab.txt, tokenizer_config.json and special_tokens_map.json, as a
    DistilBertTokenizer saves them (transformers 4.x layout, which 5.x reads)."""
    with open(os.path.join(base_dir, "vocab.txt"), "wb") as f:
        f.write(raw_vocab)
    specials = dict(cls_token="[CLS]", mask_token="[MASK]", pad_token="[PAD]", sep_token="[SEP]", unk_token="[UNK]")
    cfg = dict(clean_up_tokenization_spaces=True, do_basic_tokenize=True, do_lower_case=True,
               model_max_length=max_len, never_split=None, strip_accents=None, tokenize_chinese_chars=True,
               tokenizer_class="DistilBertTokenizer", **specials)
    for name, obj in (("tokenizer_config.json", cfg), ("special_tokens_map.json", specials)):
        with open(os.path.join(base_dir, name), "w", encoding="utf-8") as f:
            json.dump(dict(sorted(obj.items())), f, indent=2)
            f.write("\n")


def make_distilbert(out, vocab_path, seed):
    from transformers import AutoTokenizer, DistilBertConfig, DistilBertForQuestionAnswering, DistilBertTokenizer
    from peft import PeftModel

    raw, vocab = read_vocab(vocab_path)
    max_len = 128
    base_dir = fresh_dir(out)
    write_tokenizer_files(base_dir, raw, max_len)
    tok = hf_tokenizer(DistilBertTokenizer, vocab, vocab_path, do_lower_case=True, model_max_length=max_len)
    assert len(tok) == VOCAB_SIZE and tok.cls_token_id == 101 and tok.sep_token_id == 102, (len(tok), tok.cls_token_id)

    torch.manual_seed(seed)
    cfg = DistilBertConfig(vocab_size=VOCAB_SIZE, dim=32, n_layers=2, n_heads=4, hidden_dim=64,
                           max_position_embeddings=max_len, sinusoidal_pos_embds=False,
                           initializer_range=0.2, pad_token_id=0, **EAGER)
    base = DistilBertForQuestionAnswering(cfg)
    pm = save_base_and_adapters(out, base_dir, base, cfg, "DistilBertForQuestionAnswering", ["q_lin", "v_lin"], seed)
    merged = copy.deepcopy(pm).merge_and_unload().eval()

    batches = text_batches(tok, max_len, (("base", base), ("base_plus_adapter", pm), ("merged", merged)),
                           lambda enc, i, context, answer: answer_span(tok, enc["input_ids"][i], answer))
    write_json(dict(format_version=1, produced_with=produced_with(), dtype="float32", mode="eval", tolerance_abs=1e-4,
                    model=dict(config="base/config.json", vocab_size=VOCAB_SIZE, dim=32, n_layers=2, n_heads=4,
                               hidden_dim=64, max_position_embeddings=max_len, seed=seed, initializer_range=0.2,
                               random_biases_and_layernorm=True),
                    lora=dict(r=4, lora_alpha=8, scaling=2.0, lora_dropout=0.0, target_modules=["q_lin", "v_lin"],
                              task_type="QUESTION_ANS", lora_B_init_std=0.02, qa_head_in_adapter_differs_from_base=True),
                    tokenizer=dict(do_lower_case=True, padding="longest, right", truncation="only_second",
                                   max_length=max_len, pair_format="[CLS] question [SEP] context [SEP]"),
                    batches=batches), os.path.join(out, "expected.json"))

    tb = batches[0]
    b2 = DistilBertForQuestionAnswering.from_pretrained(base_dir, dropout=0.0, attention_dropout=0.0, qa_dropout=0.0, **EAGER)
    model = PeftModel.from_pretrained(b2, os.path.join(out, "adapter"), is_trainable=True)
    train_on_answers(out, model, tb, qa_dropout=0.0)

    # Read back: the tokenizer files through AutoTokenizer, the weights through
    # from_pretrained, both weight files and both adapter files alike.
    check_tokenizer(base_dir, batches, max_len)
    from safetensors.torch import load_file

    st = load_file(os.path.join(base_dir, "model.safetensors"))
    pt = torch.load(os.path.join(base_dir, "pytorch_model.bin"), map_location="cpu", weights_only=True)
    assert sorted(st) == sorted(pt) and all(torch.equal(st[k], pt[k]) for k in st), "model.safetensors != pytorch_model.bin"
    check_adapters(out, DistilBertForQuestionAnswering, base_dir, batches)


# ----------------------------------------------------------------------------- RoBERTa

def answer_span_offsets(enc, i, context, answer):
    """Token positions (inclusive) of the answer inside row i's context, by the
    offsets: byte-level BPE tokenizes an answer alone otherwise than inside its
    context (a leading space is part of a token)."""
    c0 = context.index(answer)
    c1 = c0 + len(answer)
    seq, offs = enc.sequence_ids(i), enc["offset_mapping"][i]
    toks = [j for j, (s, o) in enumerate(zip(seq, offs)) if s == 1 and o[1] > c0 and o[0] < c1]
    if not toks:
        raise SystemExit(f"make_fixtures: the answer {answer!r} is not among the context's tokens")
    return toks[0], toks[-1]


def make_roberta(out, bpe_dir, seed):
    """tiny-roberta-qa: RoBERTa's positions count from pad_token_id + 1 and skip
    the padding; no token_type_ids (type_vocab_size 1, all zero)."""
    from transformers import AutoTokenizer, RobertaConfig, RobertaForQuestionAnswering, RobertaTokenizerFast
    from peft import PeftModel

    max_len = 128
    base_dir = fresh_dir(out)
    for name in ("vocab.json", "merges.txt", "tokenizer.json"):
        shutil.copy(os.path.join(bpe_dir, name), os.path.join(base_dir, name))
    with open(os.path.join(bpe_dir, "tokenizer_config.json"), encoding="utf-8") as f:
        tcfg = json.load(f)
    tcfg["model_max_length"] = max_len
    for k in ("is_local", "local_files_only"):  # where make_bpe_vocab.py's copy was loaded from
        tcfg.pop(k, None)
    write_json(tcfg, os.path.join(base_dir, "tokenizer_config.json"))
    tok = RobertaTokenizerFast.from_pretrained(base_dir)
    assert tok.pad_token_id == 1 and tok.cls_token_id == 0 and tok.sep_token_id == 2, (tok.pad_token_id, tok.cls_token_id)
    assert tok.model_max_length == max_len, tok.model_max_length

    torch.manual_seed(seed)
    cfg = RobertaConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=max_len + 2, type_vocab_size=1,
                        layer_norm_eps=1e-5, initializer_range=0.2, pad_token_id=1, bos_token_id=0,
                        eos_token_id=2, **EAGER)
    base = RobertaForQuestionAnswering(cfg)
    pm = save_base_and_adapters(out, base_dir, base, cfg, "RobertaForQuestionAnswering", ["query", "value"], seed)
    for sub in ("adapter", "adapter_bin"):
        readme = os.path.join(out, sub, "README.md")
        if os.path.exists(readme):
            os.remove(readme)
    merged = copy.deepcopy(pm).merge_and_unload().eval()

    batches = text_batches(tok, max_len, (("base", base), ("base_plus_adapter", pm), ("merged", merged)),
                           answer_span_offsets, return_offsets_mapping=True)
    assert any(1 in row for row in batches[0]["input_ids"]), "the pair batch must be padded with <pad> (1)"
    write_json(dict(format_version=1, produced_with=produced_with(), dtype="float32", mode="eval", tolerance_abs=1e-4,
                    model=dict(config="base/config.json", model_type="roberta", vocab_size=len(tok), hidden_size=32,
                               layers=2, heads=4, intermediate_size=64, max_position_embeddings=max_len + 2,
                               pad_token_id=1, seed=seed, initializer_range=0.2, random_biases_and_layernorm=True),
                    lora=dict(r=4, lora_alpha=8, scaling=2.0, lora_dropout=0.0, target_modules=["query", "value"],
                              task_type="QUESTION_ANS", lora_B_init_std=0.02, qa_head_in_adapter_differs_from_base=True),
                    tokenizer=dict(kind="byte-level BPE (make_bpe_vocab.py)", padding="longest, right, <pad> = 1",
                                   truncation="only_second", max_length=max_len,
                                   pair_format="<s> question </s></s> context </s>"),
                    batches=batches), os.path.join(out, "expected.json"))

    tb = batches[0]
    b2 = RobertaForQuestionAnswering.from_pretrained(base_dir, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, **EAGER)
    model = PeftModel.from_pretrained(b2, os.path.join(out, "adapter"), is_trainable=True)
    train_on_answers(out, model, tb)

    # Read back: the tokenizer files through AutoTokenizer, both adapter files
    # through PeftModel.from_pretrained.
    check_tokenizer(base_dir, batches, max_len)
    check_adapters(out, RobertaForQuestionAnswering, base_dir, batches)


# ----------------------------------------------------------------------------- tokenizer

def make_tokenizer(out, vocab_path):
    from transformers import BertTokenizerFast

    raw, vocab = read_vocab(vocab_path)
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)
    with open(os.path.join(out, "vocab.txt"), "wb") as f:
        f.write(raw)
    tok = hf_tokenizer(BertTokenizerFast, vocab, vocab_path, do_lower_case=True)
    assert len(tok) == VOCAB_SIZE, len(tok)
    tok.backend_tokenizer.save(os.path.join(out, "tokenizer.json"))
    with open(os.path.join(out, "tokenizer.json"), encoding="utf-8") as f:
        assert json.load(f)["model"]["vocab"] == vocab, "tokenizer.json's vocabulary is not vocab.txt's"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["bert", "distilbert", "roberta", "tokenizer", "testdata"])
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--vocab", help="bert-base-uncased vocab.txt (distilbert, tokenizer, testdata)")
    ap.add_argument("--bpe", help="make_bpe_vocab.py's output directory (roberta)")
    a = ap.parse_args()
    if a.what not in ("bert", "roberta") and not a.vocab:
        ap.error(f"{a.what} needs --vocab")
    if a.what == "roberta" and not a.bpe:
        ap.error("roberta needs --bpe")
    torch.set_num_threads(1)
    if a.what == "bert":
        make_bert(a.out, a.seed)
    elif a.what == "distilbert":
        make_distilbert(a.out, a.vocab, a.seed)
    elif a.what == "roberta":
        make_roberta(a.out, a.bpe, a.seed)
    elif a.what == "tokenizer":
        make_tokenizer(a.out, a.vocab)
    else:
        os.makedirs(a.out, exist_ok=True)
        make_distilbert(os.path.join(a.out, "tiny-distilbert-qa"), a.vocab, a.seed)
        make_tokenizer(os.path.join(a.out, "tokenizer"), a.vocab)


if __name__ == "__main__":
    main()
