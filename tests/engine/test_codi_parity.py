"""The project's CODI against what the release computes (tests/fixtures/codi_release, made by
tools/codi_release_fixtures.py from zhenyi4/codi's own code on a tiny GPT-2): the same token ids from our data
pipeline, the same loss terms through our cached latent engine, the same greedy generations."""

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from coconut.config import DecodeConfig, MethodConfig
from coconut.data.collate import LatentCollator
from coconut.data.curriculum import build_sample
from coconut.methods.codi import CODI_FORMAT
from coconut.data.tokenize import as_tokenized_record, tokenize_record
from coconut.engine.codi_loss import codi_loss
from coconut.engine.generation import generate
from coconut.engine.reasoner import LatentReasoner
from coconut.markers import SpecialIds

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "codi_release"
META = json.loads((FIXTURES / "fixtures.json").read_text())
PAD, BOT, EOT, EOS = META["pad_id"], META["bot_id"], META["eot_id"], META["eos_id"]
# The release has no <|latent|> token (it feeds the vectors directly); any id the markers do not use serves: the
# engine replaces its embedding by the thought.
IDS = SpecialIds(start=BOT, latent=PAD, end=EOT, eos=EOS, pad=EOS)
METHOD = MethodConfig(name="codi", num_latent=META["codi"]["num_latent"], remove_eos=True, distill_loss_div_std=True,
                      distill_loss_type="smooth_l1", distill_loss_factor=1.0, ref_loss_factor=1.0)


@pytest.fixture(scope="module")
def release():
    inputs = torch.load(FIXTURES / "inputs.pt")
    forward = torch.load(FIXTURES / "forward.pt")
    inference = torch.load(FIXTURES / "inference.pt")
    return inputs, forward, inference


@pytest.fixture(scope="module")
def engine():
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(FIXTURES / "model").eval()
    engine = LatentReasoner(model, latent_id=IDS.latent, start_id=BOT, end_id=EOT, eos_id=EOS, pad_id=EOS,
                            latent_projection=True, projection_dim=META["codi"]["prj_dim"]).eval()
    engine.projection.load_state_dict(torch.load(FIXTURES / "prj.pt"))
    return engine


@pytest.fixture(scope="module")
def batch():
    tokenizer = AutoTokenizer.from_pretrained(FIXTURES / "tokenizer", use_fast=False)
    samples = []
    for r in META["records"]:
        record = {"question": r["question"], "steps": r["cot"].split(" "), "answer": r["answer"]}
        tokenized = as_tokenized_record(tokenize_record(record, tokenizer, CODI_FORMAT))
        samples.append(build_sample(tokenized, METHOD, 0, IDS))
    return LatentCollator(pad_id=EOS, latent_id=IDS.latent)(samples)


def test_our_pipeline_builds_the_release_token_ids(batch, release):
    inputs, n = release[0], METHOD.num_latent
    q = inputs["encoder_input_ids"].shape[1]  # question + <bot>; no padding: the questions have one length
    assert torch.equal(batch["input_ids"][:, :q], inputs["encoder_input_ids"])
    assert (batch["input_ids"][:, q : q + n] == IDS.latent).all()
    assert torch.equal(batch["input_ids"][:, q + n :], inputs["decoder_input_ids"])
    assert torch.equal(batch["distill"], q + n + inputs["student_distill_index"])
    real = inputs["ref_input_ids"] != PAD
    assert torch.equal(batch["teacher_attention_mask"].bool(), real)
    assert torch.equal(batch["teacher_input_ids"][real], inputs["ref_input_ids"][real])
    assert torch.equal(batch["teacher_labels"], inputs["ref_labels"])
    assert torch.equal(batch["teacher_distill"], inputs["teacher_distill_index"])


def test_loss_terms_match_the_release(engine, batch, release):
    forward = release[1]
    with torch.no_grad():
        terms = codi_loss(engine, batch, METHOD)
    for ours, theirs in (("loss", "loss"), ("student_ce", "student_ce"), ("teacher_ce", "teacher_ce"),
                         ("distill", "distill_loss")):
        assert terms[ours].item() == pytest.approx(forward[theirs].item(), abs=1e-5), ours
    per_layer = torch.stack([terms[f"distill_layer{j}"] for j in range(len(forward["distill_per_layer"]))])
    torch.testing.assert_close(per_layer, forward["distill_per_layer"], atol=1e-5, rtol=0)


def test_the_loss_trains_the_projection_and_the_model(engine, batch):
    engine.zero_grad()
    codi_loss(engine, batch, METHOD)["loss"].backward()
    assert engine.projection[1].weight.grad.abs().sum() > 0  # through the thoughts
    assert engine.model.transformer.h[0].attn.c_attn.weight.grad.abs().sum() > 0
    engine.zero_grad()


def test_greedy_generations_match_the_release(engine, batch, release):
    inference = release[2]
    n = METHOD.num_latent
    q = release[0]["encoder_input_ids"].shape[1]
    prompts = batch["input_ids"][:, : q + n + 1]  # question <bot> thoughts <eot>
    out = generate(engine, prompts, torch.ones_like(prompts), max_new_tokens=12, decode=DecodeConfig())
    for row, expected in enumerate(inference["generated_ids"]):
        assert out.sequences[row, : len(expected)].tolist() == expected.tolist(), row


def test_new_rows_can_start_at_the_mean_embedding_as_the_releases():
    from coconut.engine.special_tokens import add_tokens, init_embeddings

    tokenizer = AutoTokenizer.from_pretrained(FIXTURES / "tokenizer", use_fast=False)
    model = AutoModelForCausalLM.from_pretrained(FIXTURES / "model")
    table = model.get_input_embeddings().weight
    mean = table[: META["vocab_size_original"]].mean(dim=0)
    # The fixture's model already holds the release's three rows (pad, bot, eot) after the 366 of its tokenizer.
    torch.testing.assert_close(table[PAD:EOT + 1], mean.expand(3, -1), atol=1e-4, rtol=0)
    add_tokens(tokenizer, ["<a>", "<b>"])
    before = table.shape[0]
    init_embeddings(tokenizer, model, ["<a>", "<b>"], mean=True)
    ids = tokenizer.convert_tokens_to_ids(["<a>", "<b>"])
    rows = model.get_input_embeddings().weight[ids]
    torch.testing.assert_close(rows, table[: min(ids)].mean(dim=0).expand(2, -1))
    assert min(ids) == before - 3, "the tokenizer's next ids are the model's pad/bot/eot rows"
