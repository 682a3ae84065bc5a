"""`coconut think --thoughts N` stays within the model's positions: the question, the latent markers, N thoughts
and the answer's new tokens must fit, else one line names --thoughts and the most that fits."""

import pytest

from coconut.cli.main import main
from coconut.experiment import load_config, to_yaml
from tests.integration.tiny_run import tiny_overrides


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A run folder as training leaves it for `think`: config.yaml and export/ (an untrained tiny model)."""
    from coconut.train.build import build_system

    root = tmp_path_factory.mktemp("think")
    cfg = load_config("demo_coconut", tiny_overrides(root, "name=tiny"))  # 128 positions, 12 new tokens
    module, _, tokenizer = build_system(cfg)
    run = root / "runs" / "tiny"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(to_yaml(cfg))
    module.engine.save_pretrained(run / "export", tokenizer, method=cfg.method.name,
                                  thoughts_per_step=cfg.method.thoughts_per_step,
                                  max_latent_stage=cfg.method.max_latent_stage)
    return cfg, run, tokenizer


def test_thoughts_beyond_the_models_positions_are_refused_naming_the_most_that_fits(finished_run, capsys):
    from coconut.data.records import load_records
    from coconut.data.tokenize import TEXT_FORMATS

    cfg, run, tokenizer = finished_run
    question = load_records(cfg.data.files()["test"])[0]["question"]  # what think reads without QUESTION
    asked = len(tokenizer(question + TEXT_FORMATS[cfg.data.text_format].question_suffix)["input_ids"])
    most = 128 - asked - 2 - cfg.eval.max_new_tokens
    assert most > 10
    for thoughts in (400, most + 1):
        assert main(["think", str(run), "--thoughts", str(thoughts)]) == 2
        err = capsys.readouterr().err
        assert err == (f"coconut think: --thoughts {thoughts}: the model has 128 positions, the question takes "
                       f"{asked}, the latent markers 2 and the answer up to 12 (eval.max_new_tokens); --thoughts is "
                       f"at most {most}\n")
    assert main(["think", str(run), "--thoughts", str(most), "--top", "1"]) == 0  # the most that fits runs
    out = capsys.readouterr().out
    assert f"thought {most}: " in out and f"thought {most + 1}:" not in out


def test_a_question_too_long_for_the_model_is_refused(finished_run, capsys):
    _, run, _ = finished_run
    assert main(["think", str(run), " ".join(["c1 c2 ;"] * 60) + " ? p1 : c2 | c3", "--thoughts", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("coconut think: --thoughts 1: the model has 128 positions, the question takes ")
    assert err.endswith("no thought fits: ask a shorter question\n") and err.count("\n") == 1
