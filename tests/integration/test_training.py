"""Tiny end-to-end runs on CPU: curriculum, TensorBoard, checkpoints, export, resume after kill -9, NaN stop."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from coconut.experiment import load_config
from coconut.train.run import train
from tests.integration.checks import check_rescored
from tests.integration.tiny_run import tiny_overrides

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    cfg = load_config("demo_coconut", tiny_overrides(root))
    return root, cfg, train(cfg)


def png_shape(path: Path) -> tuple[int, ...]:
    import matplotlib.image

    return matplotlib.image.imread(path).shape


def scalars(run_dir: Path, tag: str) -> list[tuple[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    return [(e.step, e.value) for e in events.Scalars(tag)]


def test_full_curriculum_shows_stage_transitions_in_tensorboard(finished):
    root, cfg, results = finished
    stages = scalars(cfg.run_dir, "curriculum/stage")
    assert sorted({int(v) for _, v in stages}) == [0, 1, 2, 3]
    steps_per_epoch = 64 // 16
    for step, value in stages:  # stage k starts at step k * steps_per_epoch, on the losses' step axis
        assert step // steps_per_epoch in (int(value), int(value) + 1)
    for tag in ("train/loss", "val/loss", "val/acc", "val/tokens", "val/acc_best", "val/thoughts"):
        assert scalars(cfg.run_dir, tag), tag
    thoughts = [v for _, v in scalars(cfg.run_dir, "val/thoughts")]
    assert thoughts == [0.0, 1.0, 2.0, 2.0], "stage k evaluates with k thoughts, capped at max_latent_stage"


def test_tensorboard_has_sample_generations_and_hyperparameters(finished):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    root, cfg, _ = finished
    events = EventAccumulator(str(cfg.run_dir / "tensorboard"), size_guidance={"tensors": 0})
    events.Reload()
    texts = events.Tensors("val/samples/text_summary")
    assert len(texts) == 4, "one table of sample generations per validation"
    table = texts[-1].tensor_proto.string_val[0].decode()
    # The `|` of the markers is escaped, or TensorBoard's Markdown would split the row on it.
    assert table.startswith("| prompt | generated | answer | correct |") and "<\\|latent\\|>" in table
    hparams = (cfg.run_dir / "csv" / "hparams.yaml").read_text()
    assert "max_latent_stage: 2" in hparams and "lr: 0.003" in hparams


def test_tensorboard_has_the_thought_geometry_of_every_stage_with_thoughts(finished):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    root, cfg, _ = finished
    per_epoch = 64 // 16
    ends = [per_epoch * (epoch + 1) - 1 for epoch in range(4)]  # the step of each epoch's validation: stages 0..3
    with_thoughts, with_two = ends[1:], ends[2:]  # stage k has min(k, 2) thoughts (max_latent_stage=2)
    got = {tag: dict(scalars(cfg.run_dir, f"thoughts/{tag}")) for tag in
           ("norm_pos1", "norm_pos2", "token_embedding_norm", "norm_ratio", "cos_within", "cos_across")}
    assert list(got["norm_pos1"]) == with_thoughts and list(got["cos_across"]) == with_thoughts, "none at stage 0"
    assert list(got["norm_pos2"]) == with_two and list(got["cos_within"]) == with_two, "a pair needs two thoughts"
    for step in with_thoughts:  # every question has the stage's count (pad_latent_to_max): the mean of the means
        positions = [got[f"norm_pos{j}"][step] for j in (1, 2) if step in got[f"norm_pos{j}"]]
        want = sum(positions) / len(positions) / got["token_embedding_norm"][step]
        assert got["norm_ratio"][step] == pytest.approx(want, rel=1e-5)
        assert all(-1.0 <= got[f"cos_{w}"].get(step, 0.0) <= 1.0 for w in ("within", "across"))
    events = EventAccumulator(str(cfg.run_dir / "tensorboard"), size_guidance={"tensors": 0})
    events.Reload()
    tables = events.Tensors("thoughts/readout/text_summary")
    assert [t.step for t in tables] == [step + 1 for step in with_thoughts], "at the global step, as val/samples"
    for table, thoughts in zip(tables, (1, 2, 2)):
        lines = table.tensor_proto.string_val[0].decode().splitlines()
        assert lines[0] == "| question | thought | top tokens (probability) |" and len(lines) == 2 + 3 * thoughts


def test_run_folder_has_everything(finished):
    root, cfg, results = finished
    run = cfg.run_dir
    for name in ("config.yaml", "git_commit.txt", "results.json", "accuracy_vs_tokens.csv", "accuracy_vs_tokens.png",
                 "checkpoints/last.ckpt", "checkpoints/best.ckpt", "checkpoints/stage0.ckpt", "checkpoints/stage3.ckpt",
                 "tokenizer/tokenizer.json", "export/model.safetensors", "export/coconut.json"):
        assert (run / name).exists(), name
    rows = list(csv.DictReader((run / "accuracy_vs_tokens.csv").open()))
    assert [int(r["stage"]) for r in rows] == [0, 1, 2, 3]
    logged = [v for _, v in scalars(run, "val/acc")]
    assert [float(r["val_acc"]) for r in rows] == pytest.approx(logged, abs=1e-5), "the CSV holds the logged accuracies"
    for r in rows:  # 24 validation questions; every question of a stage has its thoughts (pad_latent_to_max)
        v = {k: float(x) for k, x in r.items()}
        assert v["val_tokens"] == pytest.approx(v["val_language_tokens"] + v["val_thoughts"], abs=1e-4)
        # One pass up to <bot>, one per thought but the last, one from the last thought on (or the whole prompt
        # without thoughts), one per later token: the release's count. (Passes count the EOS the model wrote; the
        # paper's token count leaves it out.)
        assert v["val_passes"] == pytest.approx(v["val_language_tokens_with_eos"] + v["val_thoughts"], abs=1e-4)
        assert 0 <= v["val_language_tokens_with_eos"] - v["val_language_tokens"] <= 1
        assert v["val_acc"] * 24 == pytest.approx(round(v["val_acc"] * 24), abs=1e-3)
    assert [float(r["val_thoughts"]) for r in rows] == [0.0, 1.0, 2.0, 2.0]
    assert png_shape(run / "accuracy_vs_tokens.png") == (440, 1210, 4), "11 x 4 inches at 110 dpi"
    saved = json.loads((run / "results.json").read_text())
    assert saved["test_stage"] == 3
    assert "best.ckpt" in saved["checkpoint"], "the best checkpoint of the final stage is tested"
    assert saved["tested_checkpoint"] == "best" and saved["schedule_complete"] is True
    assert saved["run_id"] == json.loads((run / "run.json").read_text())["run_id"]
    # The test metrics are the checkpoint's answers scored again one question at a time (24 questions,
    # 2 thoughts each at the final stage).
    again = check_rescored(saved["test"], "test", cfg, saved["checkpoint"])
    assert again["questions"] == 24 and saved["test"]["test/thoughts"] == 2.0
    assert saved["seconds"] > 0, "the run's wall time is recorded"
    # The data's provenance: the demo's files, generated on first use, with the generator that made them.
    assert {s: (d["origin"], d["generator"], d["records"]) for s, d in saved["data"].items()} == {
        "train": ("generated", "prosqa-mini", 64), "val": ("generated", "prosqa-mini", 24),
        "test": ("generated", "prosqa-mini", 24)}
    state = torch.load(run / "checkpoints" / "best.ckpt", weights_only=True)
    assert state["epoch"] == 3, "best is chosen among final-stage epochs only"


def test_export_reloads_with_plain_transformers(finished):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from coconut import LatentReasoner
    from coconut.train.checkpoints import check_checkpoint, load_weights
    from coconut.train.build import build_system

    root, cfg, _ = finished
    folder = cfg.run_dir / "export"
    model = AutoModelForCausalLM.from_pretrained(folder)  # the language model alone: plain transformers
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert model.get_input_embeddings().num_embeddings == len(tokenizer)
    engine = LatentReasoner.from_pretrained(folder)  # plus the latent settings: projection, thought scale
    module, _, _ = build_system(cfg)
    load_weights(module, check_checkpoint(json.loads((cfg.run_dir / "results.json").read_text())["checkpoint"]), "best")
    ids = tokenizer("p1 c2 ; ? p1 : c2 | c3 <|start-latent|> <|latent|> <|latent|> <|end-latent|>", return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(engine(ids["input_ids"]).logits, module.engine(ids["input_ids"]).logits, atol=1e-6)
        plain = model(input_ids=ids["input_ids"][:, :6]).logits
        assert torch.allclose(plain, module.engine.model(input_ids=ids["input_ids"][:, :6]).logits, atol=1e-6)
    assert engine.projection is not None and float(engine.thought_scale) == float(module.engine.thought_scale)


def test_eval_command_scores_a_checkpoint_at_its_stage(finished, capsys):
    from coconut.cli.main import main

    root, cfg, results = finished
    args = ["eval", "demo_coconut", *tiny_overrides(root), f"ckpt={cfg.run_dir / 'checkpoints' / 'stage1.ckpt'}"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "stage: 1" in out and "test/thoughts: 1.0" in out


def test_resume_after_kill_9_matches_an_uninterrupted_run(finished, tmp_path):
    _, reference_cfg, reference = finished
    script = Path(__file__).parent / "tiny_run.py"
    env_path = str(Path(__file__).parents[2])  # the repository root: `coconut` imports from this checkout
    kill_step = 64 // 16 * 2 + 2  # in the middle of epoch 2 (stage 2)
    proc = subprocess.run([sys.executable, str(script), str(tmp_path), str(kill_step)], cwd=env_path,
                          env={**__import__("os").environ, "PYTHONPATH": env_path}, capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr[-2000:]
    cfg = load_config("demo_coconut", tiny_overrides(tmp_path))
    last = cfg.run_dir / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["epoch"] == 1, "the last checkpoint is from the end of epoch 1"
    resumed = train(cfg, resume=str(last))
    assert resumed["test"] == reference["test"]
    rows = list(csv.DictReader((cfg.run_dir / "accuracy_vs_tokens.csv").open()))
    want = list(csv.DictReader((reference_cfg.run_dir / "accuracy_vs_tokens.csv").open()))
    assert [(r["epoch"], r["stage"], r["val_acc"], r["val_loss"]) for r in rows] == \
           [(r["epoch"], r["stage"], r["val_acc"], r["val_loss"]) for r in want]


def test_auto_thought_scale_is_measured_once_and_kept(tmp_path):
    cfg = load_config("demo_coconut", tiny_overrides(tmp_path, "latent.auto_thought_scale=true", "trainer.max_epochs=3"))
    train(cfg)
    measured = scalars(cfg.run_dir, "curriculum/thought_scale")
    assert len(measured) == 1 and measured[0][0] == 64 // 16, "measured at the first step of stage 1"
    state = torch.load(cfg.run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["state_dict"]["engine.thought_scale"].item() == pytest.approx(measured[0][1])
    assert 0 < measured[0][1] < 0.5, "embeddings of a model trained from scratch are far smaller than hidden states"


def test_nan_loss_stops_with_step_and_stage_and_keeps_the_last_good_checkpoint(tmp_path):
    import lightning as L

    from coconut.train.module import NonFiniteLossError

    class Poison(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if trainer.current_epoch == 1 and batch_idx == 1:
                with torch.no_grad():
                    next(pl_module.engine.parameters()).fill_(float("nan"))

    cfg = load_config("demo_coconut", tiny_overrides(tmp_path))
    with pytest.raises(NonFiniteLossError, match=r"global step 5 \(epoch 1, curriculum stage 1\)"):
        train(cfg, extra_callbacks=[Poison()])
    state = torch.load(cfg.run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["epoch"] == 0 and all(torch.isfinite(v).all() for v in state["state_dict"].values())


def test_missing_data_corrupt_checkpoint_and_offline_model_are_one_line_errors(tmp_path, capsys):
    from coconut.cli.main import main

    base = ["train", "demo_coconut", *tiny_overrides(tmp_path)]
    assert main(base + ["data.generator=null", f"data.train_file={tmp_path / 'nope.json'}"]) == 2
    assert "nope.json: no such file" in capsys.readouterr().err
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["eval", "demo_coconut", *tiny_overrides(tmp_path), f"ckpt={bad}"]) == 2
    assert "cannot be read safely" in capsys.readouterr().err
    assert main(["eval", "demo_coconut", *tiny_overrides(tmp_path), f"ckpt={tmp_path / 'gone.ckpt'}"]) == 2
    assert "gone.ckpt: no such file" in capsys.readouterr().err
    assert main(base + ["model.name_or_path=no-such-org/no-such-model", "data.tokenizer=word"]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # progress bars of data generation come first
    assert last.startswith("coconut train: model.name_or_path='no-such-org/no-such-model': the model is not in the "
                           "Hugging Face cache") and "hf download no-such-org/no-such-model" in last


def test_stop_classifier_trains_with_the_model_and_decides_the_thoughts(tmp_path, capsys):
    """Records with 2 or 3 steps get 2 or 3 thoughts at the final stage; the classifier learns to stop."""
    from coconut.cli.main import main

    extra = ("latent.stop_classifier=true", "method.pad_latent_to_max=false", "method.max_latent_stage=3",
             "trainer.max_epochs=5")
    cfg = load_config("demo_coconut", tiny_overrides(tmp_path, *extra))
    train(cfg)
    assert scalars(cfg.run_dir, "train/stop_loss"), "the stop loss is logged"
    export = json.loads((cfg.run_dir / "export" / "coconut.json").read_text())
    assert export["stop_classifier"] and (cfg.run_dir / "export" / "stop_classifier.pt").exists()
    ckpt = cfg.run_dir / "checkpoints" / "last.ckpt"
    for setting in (["eval.thoughts=learned"], ["decode=soft_thinking"], ["decode=mixture_of_inputs"]):
        assert main(["eval", "demo_coconut", *tiny_overrides(tmp_path, *extra, *setting), f"ckpt={ckpt}"]) == 0
        out = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines() if line.startswith("test/"))
        # What was printed is the checkpoint scored again question by question under the same setting.
        again = check_rescored(out, "test", load_config("demo_coconut", tiny_overrides(tmp_path, *extra, *setting)),
                               ckpt)
        fewest = 0 if setting == ["eval.thoughts=learned"] else 2  # fixed: a 2- or 3-step record's own count
        assert fewest <= again["thoughts"] <= 3
    # The analyses of the same checkpoint: JSON, figures, TensorBoard images.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert main(["analyze", "demo_coconut", *tiny_overrides(tmp_path, *extra), f"ckpt={ckpt}", "questions=10"]) == 0
    printed = capsys.readouterr().out
    assert "forced thoughts on 10 questions" in printed and "| learned thoughts |" in printed
    folder = cfg.run_dir / "analysis" / "last"
    analysis = json.loads((folder / "analysis.json").read_text())
    assert [r["k"] for r in analysis["search"]["forced_thoughts"]] == [0, 1, 2, 3]
    for r in analysis["search"]["forced_thoughts"]:
        assert sum(r["categories"].values()) == pytest.approx(1.0)
    assert [r["label"] for r in analysis["decoding"]] == ["greedy", "soft_thinking", "mixture_of_inputs"]
    assert [r["label"] for r in analysis["stop"]] == ["fixed thoughts", "fixed thoughts, all at the maximum",
                                                      "learned thoughts"]
    assert analysis["stop"][1]["thoughts"] == 3.0, "padded to the final stage's maximum"
    assert analysis["stop"][0]["thoughts"] < 3.0, "unpadded: 2-step questions get 2 thoughts"
    figures = ("forced_thoughts", "frontier_values", "case_study", "decoding", "stop")
    # Saved at 110 dpi: two 5.5 x 4 inch panels, one panel, and the case study's two 5.5 x 4.5 panels (k = 1, 2).
    sizes = {"forced_thoughts": (440, 1210), "frontier_values": (440, 1210), "case_study": (495, 1210),
             "decoding": (440, 605), "stop": (440, 605)}
    assert {name: png_shape(folder / f"{name}.png")[:2] for name in figures} == sizes
    events = EventAccumulator(str(cfg.run_dir / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    assert {f"analysis/{name}" for name in figures} <= set(events.Tags()["images"])
    assert main(["analyze", "demo_coconut", *tiny_overrides(tmp_path, *extra), f"ckpt={ckpt}", "what=stop"]) == 0
    again = json.loads((folder / "analysis.json").read_text())
    assert again["search"] == analysis["search"], "an analysis of another kind keeps the earlier ones"
    assert main(["analyze", "demo_coconut", *tiny_overrides(tmp_path, *extra), f"ckpt={ckpt}", "what=nothing"]) == 2


def test_init_from_loads_another_runs_weights_and_keeps_new_heads(tmp_path):
    from coconut.train.checkpoints import CheckpointError, init_weights
    from coconut.train.build import build_system

    def system(*extra):
        cfg = load_config("demo_coconut", tiny_overrides(tmp_path, *extra))
        return build_system(cfg)[0]

    cot = system("method=cot", "latent.projection=false", "name=cot")
    ckpt = tmp_path / "cot.ckpt"
    torch.save({"state_dict": cot.state_dict()}, ckpt)
    coconut = system("latent.stop_classifier=true", "name=coconut")
    projection = coconut.engine.projection.weight.detach().clone()
    init_weights(coconut, ckpt)
    for (name, a), b in zip(cot.engine.model.named_parameters(), coconut.engine.model.parameters()):
        assert torch.equal(a, b), name
    assert torch.equal(coconut.engine.projection.weight, projection), "a head the CoT run lacks keeps its init"
    with pytest.raises(CheckpointError, match="does not fit this model"):
        init_weights(system("model.layers=2", "name=other"), ckpt)
    with pytest.raises(CheckpointError, match="no such file; train the run it comes from first"):
        init_weights(coconut, tmp_path / "missing.ckpt")
