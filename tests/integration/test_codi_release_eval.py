"""`coconut eval gsm8k_codi model.release_checkpoint=...`: a checkpoint as the CODI release saves it
(tests/fixtures/codi_release/release_checkpoint) evaluated by the project's test loop on a tiny data file, without
training and without ckpt=; and the commands that must not read it refuse it."""

import json
from pathlib import Path

import pytest

from coconut.cli.main import main

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "codi_release"
META = json.loads((FIXTURES / "fixtures.json").read_text())


def release_overrides(root: Path) -> list[str]:
    """gsm8k_codi with the tiny release's base model and script arguments, its 3 records as every split."""
    data = root / "data.json"
    records = [{"question": r["question"], "steps": r["cot"].split(" "), "answer": r["answer"]}
               for r in META["records"]]
    data.write_text(json.dumps(records))
    return [f"model.release_checkpoint={FIXTURES / 'release_checkpoint'}", f"model.name_or_path={FIXTURES / 'base_model'}",
            f"model.lora_rank={META['lora']['lora_r']}", f"model.lora_alpha={META['lora']['lora_alpha']}",
            f"latent.projection_dim={META['codi']['prj_dim']}", f"method.num_latent={META['codi']['num_latent']}",
            f"data.train_file={data}", f"data.val_file={data}", f"data.test_file={data}", f"data.data_dir={root}",
            f"output_dir={root / 'runs'}", "data.eval_batch_size=3", f"eval.max_new_tokens={META['max_new_tokens']}",
            "trainer=cpu", "trainer.precision=32-true", "trainer.progress_bar=false", "logger=csv"]


def test_eval_of_a_release_checkpoint_scores_its_generations(tmp_path, capsys):
    assert main(["eval", "gsm8k_codi", *release_overrides(tmp_path)]) == 0
    printed = dict(line.split(": ", 1) for line in capsys.readouterr().out.strip().splitlines())
    assert printed["checkpoint"] == f"{FIXTURES / 'release_checkpoint'} (a checkpoint of the CODI release)"
    # The release's own test.py on these questions: "2020", "7", no number (tests/fixtures/codi_release/README.md);
    # none reaches EOS within 12 tokens, so each row is 12 language tokens and 3 thoughts.
    assert float(printed["test/acc"]) == 0.0
    assert float(printed["test/thoughts"]) == 3.0
    assert float(printed["test/tokens"]) == 12.0 + 3.0
    assert not (tmp_path / "runs").exists(), "eval writes nothing"


def test_the_test_loop_generates_the_release_tokens(tmp_path):
    """The prompts of the run's test split and its generation settings: the release's greedy tokens."""
    import torch

    from coconut.experiment import load_config
    from coconut.train.build import build_system

    cfg = load_config("gsm8k_codi", release_overrides(tmp_path))
    module, datamodule, _ = build_system(cfg)
    datamodule.setup("test")
    datamodule.freeze_stage(cfg.final_stage())
    batch = next(iter(datamodule.test_dataloader()))
    # question <bot> as the release's encoder ids, then 3 thoughts and <eot>
    assert batch["prompt_input_ids"][:, :-4].tolist() == META["inference"]["encoder_input_ids"]
    gen = module.generate(batch["prompt_input_ids"], batch["prompt_attention_mask"])
    release = torch.load(FIXTURES / "inference.pt")
    assert gen.sequences.tolist() == [ids.tolist() for ids in release["generated_ids"]]


def test_the_release_checkpoint_is_refused_where_it_cannot_be_read(tmp_path, capsys):
    overrides = release_overrides(tmp_path)
    assert main(["eval", "gsm8k_codi", *overrides, f"ckpt={FIXTURES / 'prj.pt'}"]) == 2
    assert "give one of them" in capsys.readouterr().err
    assert main(["train", "gsm8k_codi", *overrides]) == 2
    assert "not read by coconut train" in capsys.readouterr().err
    assert main(["eval", "gsm8k_codi", *overrides, "method=coconut"]) == 2
    assert "read for methods with a release to read (codi), not method=coconut" in capsys.readouterr().err


@pytest.mark.parametrize("missing", ["model.lora_rank=0", "latent.projection_dim=null"])
def test_the_release_settings_are_required(tmp_path, capsys, missing):
    assert main(["eval", "gsm8k_codi", *release_overrides(tmp_path), missing, "--dry-run"]) == 2
    assert "model.release_checkpoint" in capsys.readouterr().err
