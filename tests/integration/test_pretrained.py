"""Pretrained models from a local folder (Llama- and Qwen-shaped), with and without LoRA, through train and export."""

import json

import pytest
import torch

from coconut.experiment import load_config
from coconut.train.run import train
from tests.integration.checks import check_rescored
from tests.integration.tiny_run import tiny_overrides

pytestmark = pytest.mark.slow


def save_local_model(folder, arch, cfg):
    """A tiny 'pretrained' model and tokenizer saved like a hub download."""
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    from coconut.data.records import load_records
    from coconut.data.word_tokenizer import build_word_tokenizer
    from coconut.data.files import ensure_data

    records = [r for p in ensure_data(cfg.data).values() for r in load_records(p)]
    tokenizer = build_word_tokenizer(records, ["= "])
    common = dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                  eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**common)) if arch == "llama" else Qwen2ForCausalLM(Qwen2Config(**common))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


@pytest.mark.parametrize("arch, lora", [("llama", True), ("qwen2", False)])
def test_local_pretrained_model_trains_and_exports(tmp_path, arch, lora):
    from transformers import AutoModelForCausalLM

    folder = tmp_path / "pretrained"
    save_local_model(folder, arch, load_config("demo_coconut", tiny_overrides(tmp_path)))
    extra = [f"model.name_or_path={folder}", "data.tokenizer=model", "trainer.max_epochs=2",
             "latent.projection=false"] + (["model.lora_rank=4"] if lora else [])
    cfg = load_config("demo_coconut", tiny_overrides(tmp_path, *extra))
    results = train(cfg)
    # The test metrics are the chosen checkpoint scored again question by question: 24 questions at stage 1.
    again = check_rescored(results["test"], "test", cfg, results["checkpoint"])
    assert again["questions"] == 24 and results["test"]["test/thoughts"] == 1.0 and results["test_stage"] == 1
    export = cfg.run_dir / "export"
    assert (export / "lora_adapter").exists() == lora
    plain = AutoModelForCausalLM.from_pretrained(export)
    assert not any("lora" in name for name, _ in plain.named_parameters()), "export holds merged, plain weights"
    settings = json.loads((export / "coconut.json").read_text())
    assert settings["latent_id"] < plain.get_input_embeddings().num_embeddings


def test_codi_builds_as_its_release_new_rows_at_the_mean_and_frozen_under_lora(tmp_path):
    from coconut.train.build import build_system

    folder = tmp_path / "pretrained"
    save_local_model(folder, "llama", load_config("demo_coconut", tiny_overrides(tmp_path)))
    extra = [f"model.name_or_path={folder}", "data.tokenizer=model", "method=codi", "model.lora_rank=4",
             "model.init_new_rows=mean", "model.lora_train_new_tokens=false"]
    module, _, tokenizer = build_system(load_config("demo_coconut", tiny_overrides(tmp_path, *extra)))
    trainable = [n for n, p in module.engine.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable), "no token rows train, as the release"
    table = module.engine.model.get_input_embeddings().weight
    start = tokenizer.convert_tokens_to_ids("<|start-latent|>")
    torch.testing.assert_close(table[start], table[:start].mean(dim=0))
