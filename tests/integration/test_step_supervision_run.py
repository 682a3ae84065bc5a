"""A tiny COCONUT run with step supervision (SIM-CoT): the auxiliary decoder trains beside the model (its loss
logged, per thought too) and is kept in the checkpoint for resuming, but the exported model holds none of it and
answers exactly as the run's own engine does."""

import csv

import pytest
import torch

from coconut.experiment import load_config
from coconut.train.run import train
from tests.integration.tiny_run import tiny_overrides

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def supervised_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("simcot")
    cfg = load_config("quickstart", tiny_overrides(root, "name=simcot", "method.step_supervision=true",
                                                   "method.thoughts_per_step=2", "eval.checkpoint=last", "logger=csv"))
    return cfg, train(cfg)


def test_the_step_loss_is_logged_per_thought_and_falls(supervised_run):
    cfg, _ = supervised_run
    rows = list(csv.DictReader(next((cfg.run_dir / "csv").rglob("metrics.csv")).open()))
    logged = {k for r in rows for k, v in r.items() if v}
    assert {"train/step_loss", "train/step_loss_thought0", "train/step_loss_thought1"} <= logged
    # Thought 1 reads the first step at every stage from 1 on (stage 0 has no thought: no loss).
    values = [float(r["train/step_loss_thought0"]) for r in rows if r.get("train/step_loss_thought0")]
    values = [v for v in values if v > 0]
    assert values[-1] < values[0], "the decoder learns to write the steps"


def test_the_checkpoint_keeps_the_decoder_and_the_export_does_not(supervised_run):
    from safetensors.torch import load_file

    cfg, _ = supervised_run
    state = torch.load(cfg.run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    decoder = [k for k in state if k.startswith("step_decoder.")]
    engine = {k.removeprefix("engine.model.") for k in state if k.startswith("engine.model.")}
    assert decoder, "resuming needs the decoder's weights"
    exported = set(load_file(cfg.run_dir / "export" / "model.safetensors"))
    assert exported <= engine and not any("step_decoder" in k for k in exported)
    assert not any("step" in p.name for p in (cfg.run_dir / "export").iterdir())


def test_the_export_answers_as_the_runs_engine(supervised_run):
    from coconut.engine.reasoner import LatentReasoner
    from coconut.train.build import build_system
    from coconut.train.checkpoints import load_weights

    cfg, _ = supervised_run
    exported = LatentReasoner.from_pretrained(cfg.run_dir / "export")
    module, datamodule, tokenizer = build_system(cfg)
    load_weights(module, torch.load(cfg.run_dir / "checkpoints" / "last.ckpt", map_location="cpu",
                                    weights_only=False), "last.ckpt")
    assert module.step_decoder is not None
    prompt = torch.tensor([exported.prompt_format.prompt_ids(tokenizer, "p1 ?")])
    ours = module.engine.eval().generate(prompt, max_new_tokens=8).sequences
    theirs = exported.eval().generate(prompt, max_new_tokens=8).sequences
    assert torch.equal(ours, theirs)


def test_coconut_think_shows_the_decoders_reading_of_each_thought(supervised_run):
    from coconut.analysis.thoughts import format_thinking
    from coconut.cli.think import think

    cfg, _ = supervised_run
    assert (cfg.run_dir / "step_decoder" / "step_decoder.json").exists()
    thinking = think(cfg.run_dir, index=0)
    c = cfg.method.thoughts_per_step
    assert [read for read, _ in thinking.decoded] == [[j, j + 1] for j in range(1, len(thinking.thoughts), c)]
    text = format_thinking(thinking)
    assert "decoder reads thoughts 1+2: " in text


def test_tensorboard_gets_the_decoders_reading(supervised_run):
    from coconut.analysis.thought_stats import batch_thoughts
    from coconut.train.build import build_system
    from coconut.train.checkpoints import load_weights
    from coconut.train.thought_diagnostics import decoder_table

    cfg, _ = supervised_run
    module, datamodule, _ = build_system(cfg)
    load_weights(module, torch.load(cfg.run_dir / "checkpoints" / "last.ckpt", map_location="cpu",
                                    weights_only=False), "last.ckpt")
    datamodule.setup("validate")
    datamodule.freeze_stage(cfg.final_stage())
    batch = next(iter(datamodule.val_dataloader()))
    ids, mask = batch["prompt_input_ids"], batch["prompt_attention_mask"]
    module.eval()
    with torch.no_grad():
        table = decoder_table(module, batch_thoughts(module.engine, ids, mask), ids, mask, questions=2)
    rows = table.splitlines()[2:]
    groups = cfg.method.max_thoughts // cfg.method.thoughts_per_step
    assert len(rows) == 2 * groups and rows[0].split(" | ")[1] == "1+2"


def test_coconut_think_shows_the_thoughts_geometry(supervised_run):
    from coconut.analysis.thoughts import format_thinking
    from coconut.cli.think import think

    cfg, _ = supervised_run
    thinking = think(cfg.run_dir, index=0)
    assert len(thinking.norm_ratios) == len(thinking.thoughts) and all(r > 0 for r in thinking.norm_ratios)
    assert -1.0 <= thinking.cos_within <= 1.0
    assert "mean cosine between thoughts" in format_thinking(thinking)
