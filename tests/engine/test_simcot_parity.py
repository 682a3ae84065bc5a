"""Step supervision against the SIM-CoT release (tests/fixtures/simcot_release, recorded by
tools/simcot_release_fixtures.py from InternLM/SIM-CoT's COCONUT variant on a tiny GPT-2): the project's pipeline builds
the same ids and step targets from the same records, and its engine and auxiliary decoder give the same loss terms
(the COCONUT loss, each thought's decoder loss, the total) at stage 2 (two steps replaced by 2 x 2 thoughts) and
stage 4 (past max_latent_stage 3: the last thought reads two merged steps, or the answer where the steps ran out)."""

import json
from pathlib import Path

import pytest
import torch

from coconut.config import MethodConfig
from coconut.data.collate import LatentCollator
from coconut.data.curriculum import build_sample
from coconut.data.tokenize import PAPER_FORMAT, as_tokenized_record, tokenize_record
from coconut.engine.reasoner import LatentReasoner
from coconut.engine.step_decoder import StepDecoder
from coconut.markers import END_LATENT, LATENT, START_LATENT, SpecialIds, add_tokens

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "simcot_release"
META = json.loads((FIX / "fixtures.json").read_text())
# The release's settings (args/gsm_simcot.yaml, max_latent_stage 3 as the fixtures were made).
METHOD = MethodConfig(name="coconut", thoughts_per_step=2, max_latent_stage=3, pad_latent_to_max=True,
                      step_supervision=True, step_loss_per="sequence", step_decoder_first_position=1)


@pytest.fixture(scope="module")
def parts():
    from transformers import AutoTokenizer, GPT2LMHeadModel

    tokenizer = AutoTokenizer.from_pretrained(FIX / "tokenizer")
    tokenizer.pad_token = tokenizer.eos_token
    add_tokens(tokenizer, [START_LATENT, END_LATENT, LATENT])  # in the release's order
    ids = SpecialIds.from_tokenizer(tokenizer)
    base = GPT2LMHeadModel.from_pretrained(FIX / "base_model").eval()
    engine = LatentReasoner.from_tokenizer(base, tokenizer).eval()
    decoder = StepDecoder(GPT2LMHeadModel.from_pretrained(FIX / "aux_decoder"), per="sequence", first_position=1)
    records = [as_tokenized_record(tokenize_record(r, tokenizer, PAPER_FORMAT)) for r in META["records"]]
    return tokenizer, ids, engine, decoder.eval(), records


def batch_at(parts, stage: int):
    _, ids, _, _, records = parts
    samples = [build_sample(r, METHOD, stage, ids) for r in records]
    return samples, LatentCollator(ids.pad, ids.latent)(samples)


def test_the_special_ids_are_the_releases(parts):
    _, ids, *_ = parts
    assert (ids.start, ids.end, ids.latent, ids.eos) == (META["start_latent_id"], META["end_latent_id"],
                                                          META["latent_id"], META["eos_id"])


@pytest.mark.parametrize("stage", ["2", "4"])
def test_samples_and_step_targets_are_the_releases(parts, stage):
    tokenizer = parts[0]
    samples, _ = batch_at(parts, int(stage))
    want = META["stages"][stage]
    by_row = list(zip(*want["aux_targets"]))  # recorded per thought, then per row
    for s, features, targets in zip(samples, want["features"], by_row):
        assert s.input_ids == features["input_ids"] and s.labels == features["labels"]
        # Each thought's target, as the release decodes it (the step ids, then EOS).
        assert [[tokenizer.decode([i]) for i in t] for t in s.step_targets] == [list(t) for t in targets]


@pytest.mark.parametrize("stage", ["2", "4"])
def test_the_loss_terms_are_the_releases(parts, stage):
    _, _, engine, decoder, _ = parts
    _, batch = batch_at(parts, int(stage))
    want = torch.load(FIX / f"stage{stage}.pt")["forward"]
    with torch.no_grad():
        out = engine(batch["input_ids"], batch["attention_mask"], batch["labels"])
        step, per_thought = decoder(engine, out.hidden, batch["step_sources"], batch["step_targets"])
    assert out.loss.item() == pytest.approx(want["lm_loss"].item(), abs=1e-5)
    torch.testing.assert_close(per_thought, want["aux_loss_per_thought"].float(), atol=2e-5, rtol=1e-6)
    assert step.item() == pytest.approx(want["aux_loss"].item(), abs=2e-5)
    total = out.loss + METHOD.step_loss_weight * step
    assert total.item() == pytest.approx(want["loss"].item(), abs=2e-5)


def test_the_thought_vectors_are_the_fed_back_states(parts):
    _, _, engine, _, _ = parts
    _, batch = batch_at(parts, 4)
    want = torch.load(FIX / "stage4.pt")["forward"]["thoughts"]  # (B, n, d): the release's fed-back thoughts
    from coconut.engine.step_decoder import thought_vectors

    with torch.no_grad():
        hidden = engine(batch["input_ids"], batch["attention_mask"]).hidden
        vectors = thought_vectors(engine, hidden, batch["step_sources"])  # (B, G, c, d)
    torch.testing.assert_close(vectors.flatten(1, 2), want, atol=1e-5, rtol=1e-5)


# -- the CODI variant (tests/fixtures/simcot_release/codi, from the release's CODI/ with use_decoder) ------------------

CODI_FIX = FIX / "codi"
CODI_META = json.loads((CODI_FIX / "fixtures.json").read_text())


@pytest.fixture(scope="module")
def codi():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from coconut.methods.codi import CODI_FORMAT

    m = CODI_META
    # The release has no <|latent|> token (it feeds the vectors directly): any id the markers do not use serves.
    ids = SpecialIds(start=m["bot_id"], latent=m["pad_id"], end=m["eot_id"], eos=m["eos_id"], pad=m["eos_id"])
    method = MethodConfig(name="codi", num_latent=m["codi"]["num_latent"], step_supervision=True, step_loss_per="token",
                          step_decoder_first_position=0, step_decoder_dropout=True)
    engine = LatentReasoner(AutoModelForCausalLM.from_pretrained(CODI_FIX / "model").eval(), latent_id=ids.latent,
                            start_id=ids.start, end_id=ids.end, eos_id=ids.eos, pad_id=ids.eos, latent_projection=True,
                            projection_dim=m["codi"]["prj_dim"]).eval()
    engine.projection.load_state_dict(torch.load(CODI_FIX / "prj.pt"))
    decoder = StepDecoder(AutoModelForCausalLM.from_pretrained(CODI_FIX / "aux_decoder"), per="token",
                          first_position=0, dropout=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(CODI_FIX / "tokenizer", use_fast=False)
    records = [as_tokenized_record(tokenize_record(r, tokenizer, CODI_FORMAT)) for r in m["records"]]
    return tokenizer, ids, method, engine, decoder, records


def codi_batch(codi, order):
    from coconut.engine.codi_loss import codi_loss

    tokenizer, ids, method, engine, decoder, records = codi
    samples = [build_sample(records[i], method, 0, ids) for i in order]
    batch = LatentCollator(ids.pad, ids.latent)(samples)
    with torch.no_grad():
        terms = codi_loss(engine, batch, method)
        step, per_call = decoder(engine, terms["hidden"], batch["step_sources"], batch["step_targets"])
    return samples, terms, step, per_call


def test_codi_step_targets_are_the_releases_intended_ones(codi):
    tokenizer = codi[0]
    samples, *_ = codi_batch(codi, [0, 1, 2])
    for s, want in zip(samples, CODI_META["intended_targets"]):
        got = [[tokenizer.decode([i]) for i in t] for t in s.step_targets]
        assert got == [t if t != ["[PAD]"] else [] for t in want]  # [PAD]: the release's "no step"


def test_codi_thought_vectors_are_the_releases_latents(codi):
    from coconut.engine.step_decoder import thought_vectors

    _, _, _, engine, _, records = codi
    samples, terms, _, _ = codi_batch(codi, [0, 1, 2])
    batch = LatentCollator(codi[1].pad, codi[1].latent)(samples)
    with torch.no_grad():
        vectors = thought_vectors(engine, terms["hidden"], batch["step_sources"])  # (B, 3, 1, d)
    torch.testing.assert_close(vectors[:, :, 0], torch.load(CODI_FIX / "forward.pt")["forward"]["latents"],
                               atol=1e-5, rtol=1e-5)


def test_codi_step_loss_is_the_releases_where_its_targets_are_whole(codi):
    # The release trims every row's target to the first row's step length (a bug its fixtures show): with the
    # records in reverse order the first row has every step, its targets are whole, and its loss is the one the
    # intended targets give, which ours computes in any order.
    want = CODI_META["reversed_batch"]["explain_loss"]
    for order in ([2, 1, 0], [0, 1, 2]):
        _, terms, step, _ = codi_batch(codi, order)
        assert step.item() == pytest.approx(want, abs=1e-5), order
    release = CODI_META["losses"]
    assert terms["loss"].item() == pytest.approx(release["ce_loss"] + release["distill_loss"] + release["ref_ce_loss"],
                                                 abs=1e-5)
