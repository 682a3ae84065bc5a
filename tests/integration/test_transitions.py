"""A tiny curriculum run read back as TensorBoard reads it: the stage is a step function, and each stage's
entry, exit and language steps are logged with the values an independent evaluation and the data give."""

import csv
import json
import math

import lightning as L
import pytest

from coconut.data.records import load_records
from coconut.experiment import load_config
from coconut.train.run import evaluate, train
from tests.integration.tiny_run import tiny_overrides

pytestmark = pytest.mark.slow

STEPS_PER_EPOCH = 64 // 16  # tiny_run: 64 training examples, batches of 16, one epoch per stage, 4 epochs


class FakeThoughts(L.Callback):
    """Stands for a thought-diagnostics callback: logs thoughts/probe = 10 * stage + epoch at each validation."""

    def on_validation_epoch_end(self, trainer, pl_module):
        pl_module.log("thoughts/probe", float(10 * trainer.datamodule.stage + trainer.current_epoch))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("transitions")
    cfg = load_config("demo_coconut", tiny_overrides(root))
    return cfg, train(cfg, extra_callbacks=[FakeThoughts()])


def scalars(cfg, tag) -> list[tuple[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(cfg.run_dir / "tensorboard"))
    events.Reload()
    return [(e.step, e.value) for e in events.Scalars(tag)]


def test_the_stage_is_one_value_per_step_flat_within_a_stage_and_jumping_at_the_switch(run):
    cfg, _ = run
    stage = scalars(cfg, "curriculum/stage")
    # Every training step once (TensorBoard draws one point per step): 0 on steps 0-3, 1 on 4-7, ...; the jump
    # lies between a stage's last step and the next stage's first, where its losses begin.
    assert stage == [(step, float(step // STEPS_PER_EPOCH)) for step in range(4 * STEPS_PER_EPOCH)]
    losses = [step for step, _ in scalars(cfg, "train/loss")]
    assert losses == [step for step, _ in stage], "on the losses' step axis"


def test_entry_and_exit_are_logged_at_the_switch_and_at_the_last_validation(run):
    cfg, _ = run
    switches = [k * STEPS_PER_EPOCH for k in (1, 2, 3)]
    for tag in ("entry_acc", "entry_tokens", "entry_explicit_steps", "entry_expected_steps", "drop", "entry_seconds"):
        assert [step for step, _ in scalars(cfg, f"transition/{tag}")] == switches, tag
    validations = [step for step, _ in scalars(cfg, "val/acc")]
    assert validations == [s - 1 for s in switches] + [4 * STEPS_PER_EPOCH - 1]
    for tag in ("exit_acc", "exit_tokens", "explicit_steps", "expected_steps"):
        assert [step for step, _ in scalars(cfg, f"transition/{tag}")] == validations, tag
    assert [v for _, v in scalars(cfg, "transition/exit_acc")] == [v for _, v in scalars(cfg, "val/acc")]
    assert [v for _, v in scalars(cfg, "transition/exit_tokens")] == \
        pytest.approx([v for _, v in scalars(cfg, "val/tokens")], abs=1e-5)


def test_the_entry_is_the_end_of_a_stage_scored_at_the_next_stage_inputs(run):
    # stage<k>.ckpt holds the weights of stage k's end: evaluated at stage k + 1 on the validation questions by
    # `coconut eval`'s own path, it must give the entry figures logged at the switch.
    cfg, _ = run
    entry_acc, entry_tokens = dict(scalars(cfg, "transition/entry_acc")), dict(scalars(cfg, "transition/entry_tokens"))
    for k in (0, 1, 2):
        scored = evaluate(cfg, str(cfg.run_dir / "checkpoints" / f"stage{k}.ckpt"), stage=k + 1, split="val")
        step = (k + 1) * STEPS_PER_EPOCH
        assert entry_acc[step] == pytest.approx(scored["val/acc"], abs=1e-5)
        assert entry_tokens[step] == pytest.approx(scored["val/tokens"], abs=1e-5), k
    exit_acc = dict(scalars(cfg, "transition/exit_acc"))
    for step, drop in scalars(cfg, "transition/drop"):
        assert drop == pytest.approx(exit_acc[step - 1] - entry_acc[step], abs=1e-5)


def test_expected_steps_are_the_steps_each_stage_leaves_in_language(run):
    # Hand-computed from the validation file: a record of n steps keeps max(0, n - k) in language at stage k <=
    # max_latent_stage (2 here) and none after it.
    cfg, _ = run
    counts = [len(r["steps"]) for r in load_records(cfg.data.files()["val"])]
    want = [sum(max(0, n - k) if k <= 2 else 0 for n in counts) / len(counts) for k in range(4)]
    assert [v for _, v in scalars(cfg, "transition/expected_steps")] == pytest.approx(want, abs=1e-4)
    assert [v for _, v in scalars(cfg, "transition/entry_expected_steps")] == pytest.approx(want[1:], abs=1e-4)
    written = [v for _, v in scalars(cfg, "transition/explicit_steps")]
    assert all(0 <= v <= 12 for v in written), "at most one step per generated token (eval.max_new_tokens=12)"


def test_results_json_csv_and_figure_summarise_each_stage(run):
    cfg, results = run
    saved = json.loads((cfg.run_dir / "results.json").read_text())
    stages = saved["transitions"]
    assert saved["transitions"] == results["transitions"] and [s["stage"] for s in stages] == [0, 1, 2, 3]
    entry_acc, exit_acc = dict(scalars(cfg, "transition/entry_acc")), dict(scalars(cfg, "transition/exit_acc"))
    cot = [v for _, v in scalars(cfg, "val/cot_match")]
    for k, s in enumerate(stages):
        assert s["exit_step"] == (k + 1) * STEPS_PER_EPOCH - 1 and s["exit_acc"] == pytest.approx(exit_acc[s["exit_step"]])
        assert s["exit_cot_match"] == pytest.approx(cot[k], abs=1e-5)
        # The probe's value at the stage's last validation (epoch k at stage k): thoughts/ figures are carried,
        # beside the thought geometry of the stages with thoughts (and none at stage 0, which has none).
        assert s["thoughts"]["thoughts/probe"] == 10.0 * k + k
        geometry = {key for key in s["thoughts"] if key != "thoughts/probe"}
        thoughts = min(k, 2)  # the tiny runs' method.max_latent_stage=2, one thought per step
        assert geometry == (set() if k == 0 else {"thoughts/norm_ratio", "thoughts/token_embedding_norm",
                                                  *(f"thoughts/norm_pos{j}" for j in range(1, thoughts + 1)),
                                                  "thoughts/cos_across", *(["thoughts/cos_within"] if thoughts > 1 else [])})
        if k == 0:
            assert s["entry_acc"] is None and s["drop"] is None
            continue
        assert s["entry_step"] == k * STEPS_PER_EPOCH and s["entry_acc"] == pytest.approx(entry_acc[s["entry_step"]])
        assert s["drop"] == pytest.approx(stages[k - 1]["exit_acc"] - s["entry_acc"], abs=1e-5)
        assert s["recovery"] == pytest.approx(s["exit_acc"] - s["entry_acc"], abs=1e-5)
        assert s["entry_questions"] == 24, "every validation question"
    rows = list(csv.DictReader((cfg.run_dir / "transitions.csv").open()))
    assert [(r["kind"], r["stage"]) for r in rows] == [("val", "0"), ("entry", "1"), ("val", "1"), ("entry", "2"),
                                                       ("val", "2"), ("entry", "3"), ("val", "3")]
    assert [float(r["thoughts/probe"]) for r in rows if r["kind"] == "val"] == [0.0, 11.0, 22.0, 33.0]
    import matplotlib.image

    panels = 4 + len({key for s in stages for key in s["thoughts"]})  # one per thoughts/ figure, the probe's too
    rows_of_four = -(-panels // 4)
    assert matplotlib.image.imread(cfg.run_dir / "transitions.png").shape == (330 * rows_of_four, 1600, 4), \
        "4 panels and one per thoughts/ figure, in rows of 4: 16 x 3.3 in per row at 100 dpi"
    assert not any(math.isnan(v) for s in stages for v in (s["exit_acc"], s["exit_tokens"]))
