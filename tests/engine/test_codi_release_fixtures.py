"""The CODI release fixtures (tests/fixtures/codi_release, made by tools/codi_release_fixtures.py) are complete and
self-consistent: plain transformers calls on the merged GPT-2, the saved projection and the saved ids reproduce every
recorded value of the official release's forward and inference. No project CODI code is used here, so a failure
means the fixtures (or transformers) changed, not the project's implementation."""

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "codi_release"
ATOL = 1e-5


@pytest.fixture(scope="module")
def fx():
    from transformers import GPT2LMHeadModel

    meta = json.loads((FIX / "fixtures.json").read_text())
    model = GPT2LMHeadModel.from_pretrained(FIX / "model").eval()
    d, codi = model.config.n_embd, meta["codi"]
    prj = nn.Sequential(nn.Dropout(codi["prj_dropout"]), nn.Linear(d, codi["prj_dim"]), nn.GELU(),
                        nn.Linear(codi["prj_dim"], d))
    prj.add_module("ln", nn.LayerNorm(d))
    prj.load_state_dict(torch.load(FIX / "prj.pt"))
    prj.eval()
    return dict(meta=meta, model=model, prj=prj, inputs=torch.load(FIX / "inputs.pt"),
                forward=torch.load(FIX / "forward.pt"), inference=torch.load(FIX / "inference.pt"))


def close(got, want, what):
    diff = (got - want).abs().max().item()
    print(f"{what}: max abs diff {diff:.3g}")  # shown with pytest -s
    assert diff <= ATOL, f"{what}: max abs diff {diff:.3g}"
    return diff


def ce(logits, labels):
    """The release's CE: logits[:, :-1] against labels[:, 1:], token mean, -100 ignored."""
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)), labels[:, 1:].reshape(-1), ignore_index=-100)


def at(hidden_states, index):
    """[B, L+1, d]: every hidden_states entry at one position per row."""
    rows = torch.arange(index.numel())
    return torch.stack([h[rows, index] for h in hidden_states], 1)


def latent_passes(model, prj, input_ids, attention_mask, n):
    """Encoder pass with mask, then n latent passes through the cache without a mask (the release's loop)."""
    from transformers import DynamicCache

    cache = DynamicCache(config=model.config)
    out = model(input_ids=input_ids, attention_mask=attention_mask, cache=cache, use_cache=True,
                output_hidden_states=True)
    z = prj(out.hidden_states[-1][:, -1:])
    fed = []
    for _ in range(n):
        fed.append(z)
        out = model(inputs_embeds=z, cache=cache, use_cache=True, output_hidden_states=True)
        z = prj(out.hidden_states[-1][:, -1:])
    return cache, torch.cat(fed, 1), z[:, 0]


def test_fixture_files_are_small_and_named():
    total = sum(f.stat().st_size for f in FIX.rglob("*") if f.is_file())
    assert total < 2e6
    for name in ("README.md", "fixtures.json", "inputs.pt", "forward.pt", "inference.pt", "prj.pt",
                 "model/config.json", "tokenizer/vocab.json", "tokenizer/merges.txt"):
        assert (FIX / name).is_file(), name


def test_ids_and_tokenizer_agree(fx):
    from transformers import AutoTokenizer

    meta, inputs = fx["meta"], fx["inputs"]
    v = meta["vocab_size_original"]
    assert (meta["pad_id"], meta["bot_id"], meta["eot_id"]) == (v, v + 1, v + 2)
    assert fx["model"].config.vocab_size == v + 3
    tok = AutoTokenizer.from_pretrained(FIX / "tokenizer", use_fast=False)
    assert len(tok) == v and tok.eos_token_id == meta["eos_id"]
    for i, record in enumerate(meta["records"]):
        q = tok(record["question"]).input_ids
        assert inputs["encoder_input_ids"][i].tolist() == q + [meta["bot_id"]]
        answer = tok(f"The answer is: {record['answer']}").input_ids + [meta["eos_id"]]
        assert inputs["decoder_input_ids"][i].tolist() == [meta["eot_id"]] + answer
        cot = tok(" ".join(record["cot"].split(" ")[:-1])).input_ids  # the release drops the last CoT step
        ref = q + cot + answer
        assert inputs["ref_input_ids"][i, :len(ref)].tolist() == ref
        assert (inputs["ref_input_ids"][i, len(ref):] == meta["pad_id"]).all()
        assert (inputs["ref_labels"][i, :len(q)] == -100).all() and (inputs["ref_labels"][i, len(ref):] == -100).all()
        assert inputs["ref_labels"][i, len(q):len(ref)].tolist() == ref[len(q):]
        prompt = tok("The answer is:").input_ids
        t, s = inputs["teacher_distill_index"][i].item(), inputs["student_distill_index"][i].item()
        assert ref[t - len(prompt) + 1:t + 1] == prompt  # the distillation token ends "The answer is:"
        assert inputs["decoder_input_ids"][i, s - len(prompt) + 1:s + 1].tolist() == prompt
    assert torch.equal(inputs["teacher_distill_index"], inputs["ref_answer_position"] - 1)
    assert torch.equal(inputs["student_distill_index"], inputs["model_answer_position"] - 1)
    assert torch.equal(inputs["labels"], inputs["decoder_input_ids"])  # no decoder padding in this batch
    assert inputs["encoder_attention_mask"].all()


@torch.no_grad()
def test_teacher_pass_reproduces_the_release(fx):
    model, inputs, rec = fx["model"], fx["inputs"], fx["forward"]
    out = model(input_ids=inputs["ref_input_ids"], output_hidden_states=True)  # the release passes no mask
    close(out.logits, rec["teacher_logits"], "teacher logits")
    close(ce(out.logits, inputs["ref_labels"]), rec["teacher_ce"], "teacher CE")
    close(at(out.hidden_states, inputs["teacher_distill_index"]), rec["teacher_hidden_at_distill"], "teacher hidden")


@torch.no_grad()
def test_student_pass_and_losses_reproduce_the_release(fx):
    model, prj, inputs, rec, meta = fx["model"], fx["prj"], fx["inputs"], fx["forward"], fx["meta"]
    cache, fed, discarded = latent_passes(model, prj, inputs["encoder_input_ids"], inputs["encoder_attention_mask"],
                                          meta["codi"]["num_latent"])
    close(fed, rec["latents"], "fed-back latents")
    close(discarded, rec["latent_discarded"], "discarded last latent")
    embeds = model.get_input_embeddings()(inputs["decoder_input_ids"])
    out = model(inputs_embeds=embeds, cache=cache, use_cache=True, output_hidden_states=True)
    close(out.logits, rec["student_logits"], "student logits")
    student_ce = ce(out.logits, inputs["labels"])
    close(student_ce, rec["student_ce"], "student CE")
    student = at(out.hidden_states, inputs["student_distill_index"])
    close(student, rec["student_hidden_at_distill"], "student hidden")

    teacher = rec["teacher_hidden_at_distill"]
    raw = torch.stack([F.smooth_l1_loss(student[:, j], teacher[:, j]) for j in range(teacher.size(1))])
    std = torch.stack([teacher[:, j].std() for j in range(teacher.size(1))])  # one scalar per layer over B*d
    close(raw, rec["distill_per_layer_raw"], "per-layer SmoothL1")
    close(std, rec["teacher_std_per_layer"], "per-layer teacher std")
    distill = (raw / std).mean()
    close(distill, rec["distill_loss_unscaled"], "distill loss")
    factor, ref_factor = meta["losses"]["distill_loss_factor"], meta["losses"]["ref_loss_factor"]
    close(factor * distill, rec["distill_loss"], "weighted distill loss")
    total = student_ce + factor * distill + ref_factor * rec["teacher_ce"]
    close(total, rec["loss"], "total loss")


@torch.no_grad()
def test_greedy_inference_one_question_at_a_time_reproduces_the_release(fx):
    model, prj, inputs, rec, meta = fx["model"], fx["prj"], fx["inputs"], fx["inference"], fx["meta"]
    wte = model.get_input_embeddings()
    for i, want in enumerate(rec["generated_ids"]):
        enc = inputs["encoder_input_ids"][i:i + 1]
        cache, fed, _ = latent_passes(model, prj, enc, torch.ones_like(enc), meta["codi"]["inf_latent_iterations"])
        close(fed[0], rec["latents"][i], f"inference latents of question {i}")
        step, tokens = wte(torch.tensor([[meta["eot_id"]]])), []
        for _ in range(meta["max_new_tokens"]):
            logits = model(inputs_embeds=step, cache=cache, use_cache=True).logits[:, -1, :meta["vocab_size"] - 1]
            tokens.append(int(logits.argmax(-1)))  # the last id (<eot>) is never generated; pad/bot can be
            if tokens[-1] == meta["eos_id"]:
                break
            step = wte(torch.tensor([[tokens[-1]]]))
        assert tokens == want.tolist(), (i, tokens, want.tolist())
