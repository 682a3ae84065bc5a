"""A checkpoint as the CODI release saves it (tests/fixtures/codi_release/release_checkpoint: its CODI module's whole
state dict, LoRA not merged, written by tools/codi_release_fixtures.py from zhenyi4/codi's own code) loaded on its
base model by coconut.engine.codi_checkpoint: the release's greedy generations, the merged weights of the fixture,
the markers at the release's ids, and one clear error for a file that does not fit."""

import json
import re
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from coconut.config import ConfigError, DecodeConfig, MethodConfig
from coconut.engine.codi_checkpoint import load_codi_checkpoint
from coconut.engine.generation import generate
from coconut.markers import END_LATENT, LATENT, START_LATENT, SpecialIds

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "codi_release"
CHECKPOINT = FIXTURES / "release_checkpoint"
META = json.loads((FIXTURES / "fixtures.json").read_text())
V = META["vocab_size_original"]
SETTINGS = dict(lora_rank=META["lora"]["lora_r"], lora_alpha=META["lora"]["lora_alpha"],
                lora_targets=",".join(META["lora"]["target_modules"]), projection_dim=META["codi"]["prj_dim"],
                num_latent=META["codi"]["inf_latent_iterations"], max_new_tokens=META["max_new_tokens"])


def load(source=CHECKPOINT, **overrides):
    base = AutoModelForCausalLM.from_pretrained(FIXTURES / "base_model")
    tokenizer = AutoTokenizer.from_pretrained(FIXTURES / "base_model", use_fast=False)
    return load_codi_checkpoint(source, base, tokenizer, **{**SETTINGS, **overrides})


@pytest.fixture(scope="module")
def engine():
    return load()


@pytest.fixture(scope="module")
def release():
    return torch.load(FIXTURES / "inference.pt")


def prompts(tokenizer):
    """question <bot> 3 thoughts <eot>, built by the data pipeline as tests/engine/test_codi_parity.py builds them."""
    from coconut.data.collate import LatentCollator
    from coconut.data.curriculum import build_sample
    from coconut.methods.codi import CODI_FORMAT
    from coconut.data.tokenize import as_tokenized_record, tokenize_record

    ids = SpecialIds.from_tokenizer(tokenizer)
    method = MethodConfig(name="codi", num_latent=META["codi"]["num_latent"])
    samples = []
    for r in META["records"]:
        record = {"question": r["question"], "steps": r["cot"].split(" "), "answer": r["answer"]}
        samples.append(build_sample(as_tokenized_record(tokenize_record(record, tokenizer, CODI_FORMAT)), method, 0, ids))
    batch = LatentCollator(pad_id=ids.pad, latent_id=ids.latent)(samples)
    q = len(META["inference"]["encoder_input_ids"][0])
    return batch["input_ids"][:, : q + method.num_latent + 1]


def test_the_markers_take_the_release_ids(engine):
    tokenizer = engine.tokenizer
    assert tokenizer.convert_tokens_to_ids([START_LATENT, END_LATENT]) == [V + 1, V + 2]  # bot, eot
    assert (tokenizer.pad_token, tokenizer.pad_token_id) == ("[PAD]", V)  # the release's pad
    assert tokenizer.convert_tokens_to_ids(LATENT) == V + 3  # a row of its own, never read
    assert (engine.start_id, engine.end_id, engine.latent_id, engine.pad_id) == (V + 1, V + 2, V + 3, V)
    state = torch.load(CHECKPOINT / "pytorch_model.bin")
    saved = state["codi.base_model.model.transformer.wte.weight"]
    table = engine.model.get_input_embeddings().weight
    assert table.shape[0] == V + 4
    assert torch.equal(table[: V + 3], saved)  # pad, bot and eot rows as the release trained (left) them
    assert torch.equal(table[V + 3], table[V])
    assert engine.model.get_output_embeddings().weight is table  # still tied


def test_greedy_generations_match_the_release(engine, release):
    batch = prompts(engine.tokenizer)
    encoder = torch.tensor(META["inference"]["encoder_input_ids"])
    assert torch.equal(batch[:, : encoder.shape[1]], encoder)  # question <bot>: the release's ids
    assert (batch[:, encoder.shape[1]: -1] == V + 3).all() and (batch[:, -1] == V + 2).all()
    out = generate(engine, batch, torch.ones_like(batch), max_new_tokens=META["max_new_tokens"], decode=DecodeConfig())
    for row, expected in enumerate(release["generated_ids"]):
        assert out.sequences[row, : len(expected)].tolist() == expected.tolist(), row


def test_answer_asks_as_the_release_tests(engine, release):
    """engine.answer builds the same prompt from the question text alone (the prompt format set by the loader)."""
    answers = engine.answer([r["question"] for r in META["records"]])
    for answer, expected, text in zip(answers, release["generated_ids"], META["inference"]["generated_text"]):
        assert answer.text == text
        assert (answer.thoughts, answer.generated_tokens) == (3, len(expected))


def test_the_merged_weights_are_the_release_model_merged(engine):
    merged = AutoModelForCausalLM.from_pretrained(FIXTURES / "model").state_dict()
    ours = engine.model.state_dict()
    assert set(ours) == set(merged)
    for key, want in merged.items():
        got = ours[key][: want.shape[0]] if key.endswith(("wte.weight", "lm_head.weight")) else ours[key]
        torch.testing.assert_close(got, want, atol=1e-6, rtol=0, msg=key)
    for key, want in torch.load(FIXTURES / "prj.pt").items():
        assert torch.equal(engine.projection.state_dict()[key], want), key


def test_safetensors_with_the_tied_head_left_out_loads_the_same(engine, tmp_path):
    """test.py tries model.safetensors first; safetensors refuses shared tensors, so such a file keeps one of the
    tied embedding and LM head (either name will do)."""
    from safetensors.torch import save_file

    state = torch.load(CHECKPOINT / "pytorch_model.bin")
    del state["codi.base_model.model.lm_head.weight"]
    save_file({k: v.clone() for k, v in state.items()}, tmp_path / "model.safetensors")
    other = load(tmp_path)
    for key, value in engine.model.state_dict().items():
        assert torch.equal(other.model.state_dict()[key], value), key


def test_older_key_names_load_the_same(engine, tmp_path):
    """The prefix `coconut.` (test.py's commented rename) and peft's names before `.base_layer.`."""
    state = torch.load(CHECKPOINT / "pytorch_model.bin")
    old = {k.replace("codi.", "coconut.", 1).replace(".base_layer.", "."): v for k, v in state.items()}
    torch.save(old, tmp_path / "pytorch_model.bin")
    other = load(tmp_path)
    for key, value in engine.model.state_dict().items():
        assert torch.equal(other.model.state_dict()[key], value), key


def save_changed(tmp_path, change) -> Path:
    state = torch.load(CHECKPOINT / "pytorch_model.bin")
    change(state)
    torch.save(state, tmp_path / "pytorch_model.bin")
    return tmp_path / "pytorch_model.bin"


def test_a_missing_key_is_named(tmp_path):
    gone = "codi.base_model.model.transformer.h.1.mlp.c_fc.lora_B.default.weight"
    path = save_changed(tmp_path, lambda s: s.pop(gone))
    with pytest.raises(ConfigError, match=rf"{re.escape(str(path))}.* 1 missing key\(s\) \(e.g. {gone}\), 0 unexpected"):
        load(tmp_path)


def test_an_unexpected_key_is_named(tmp_path):
    path = save_changed(tmp_path, lambda s: s.update({"prj.5.weight": torch.zeros(2)}))
    with pytest.raises(ConfigError, match=rf"{re.escape(str(path))}.* 0 missing key\(s\), 1 unexpected \(e.g. prj.5.weight\)"):
        load(path)  # the file itself
    with pytest.raises(ConfigError, match=r"2 unexpected \(e.g. prj.ln.weight, prj.ln.bias\)"):
        load(projection_norm=False)  # the release's --prj_no_ln: no LayerNorm to load


def test_a_wrong_shape_is_named(tmp_path):
    key = "codi.base_model.model.transformer.h.0.attn.c_attn.lora_A.default.weight"
    path = save_changed(tmp_path, lambda s: s.update({key: torch.zeros(8, 32)}))
    with pytest.raises(ConfigError, match=rf"{re.escape(str(path))}: 1 tensor\(s\) of another shape .*{key} \[8, 32\] "
                                          r"\(model \[4, 32\]\).*lora_rank"):
        load(tmp_path)
    with pytest.raises(ConfigError, match=r"16 tensor\(s\) of another shape"):  # lora_A and lora_B of 4 maps x 2 layers
        load(lora_rank=8)


def test_a_folder_without_weights_and_a_hub_id_not_at_hand(tmp_path):
    with pytest.raises(ConfigError, match=rf"{tmp_path}: the folder holds neither model.safetensors nor "
                                          r"pytorch_model.bin"):
        load(tmp_path)
    with pytest.raises(ConfigError, match=r"no such folder, and not a Hugging Face hub id"):
        load(tmp_path / "no" / "such" / "pytorch_model.bin")
    (tmp_path / "pytorch_model.bin").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match=rf"{tmp_path / 'pytorch_model.bin'} cannot be read as a state dict"):
        load(tmp_path)
    with pytest.raises(ConfigError, match=r"model.release_checkpoint='zen-E/CODI-gpt2': the checkpoint is not in the "
                                          r"Hugging Face cache .*hf download zen-E/CODI-gpt2"):
        load("zen-E/CODI-gpt2")  # the tests run with HF_HUB_OFFLINE=1


def test_a_hub_id_reads_the_cache(engine, tmp_path, monkeypatch):
    snapshot = tmp_path / "models--zen-E--CODI-tiny" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "pytorch_model.bin").write_bytes((CHECKPOINT / "pytorch_model.bin").read_bytes())
    (tmp_path / "models--zen-E--CODI-tiny" / "refs").mkdir()
    (tmp_path / "models--zen-E--CODI-tiny" / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    other = load("zen-E/CODI-tiny")
    assert torch.equal(other.projection[1].weight, engine.projection[1].weight)


def test_a_tokenizer_that_holds_the_markers_is_refused():
    base = AutoModelForCausalLM.from_pretrained(FIXTURES / "base_model")
    tokenizer = AutoTokenizer.from_pretrained(FIXTURES / "base_model", use_fast=False)
    tokenizer.add_special_tokens({"additional_special_tokens": [START_LATENT]})
    with pytest.raises(ConfigError, match=r"already holds <\|start-latent\|>"):
        load_codi_checkpoint(CHECKPOINT, base, tokenizer, **SETTINGS)
