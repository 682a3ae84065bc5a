"""The demo's pipeline on a very small setting: CoT, COCONUT from CoT's stage 0, No-CoT at equal steps, every
row tested, the table, targets, plot, TensorBoard image and a thought reading written; seeds reuse finished runs."""

import json

import pytest

from coconut.analysis.demo_results import aggregate, format_table, margin95, seed_table, targets
from coconut.cli.demo import run_demo
from coconut.cli.main import main
from coconut.machine import label
from coconut.run_dir import RunFolderError
from tests.integration.tiny_run import TINY

pytestmark = pytest.mark.slow


def demo_overrides(root):
    # 64 samples / 16 = 4 steps an epoch; stage 0 for 2 epochs, then stages 1 and 2 for 1 epoch each.
    return [f"output_dir={root / 'demo'}", f"data.data_dir={root / 'data'}", *TINY, "trainer.first_stage_epochs=2",
            "data.test_size=20"]


def test_demo_trains_every_method_for_the_same_steps_and_reads_thoughts(tmp_path, capsys):
    results = run_demo(demo_overrides(tmp_path), seeds=(0,))
    rows = {r["key"]: r for r in results["rows"]}
    assert list(rows) == ["cot", "coconut", "no_cot", "stage0", "stage1"]
    assert [rows[k]["train_steps"] for k in ("cot", "coconut", "no_cot")] == [16, 16, 16], "the same budget"
    assert rows["stage0"]["train_steps"] == 8 and rows["stage1"]["train_steps"] == 12
    assert [rows[k]["thoughts"] for k in ("cot", "coconut", "no_cot", "stage0", "stage1")] == [0, 2, 0, 0, 1]
    assert rows["cot"]["language_tokens"] > 0 and rows["cot"]["token_share"] == 1.0
    cot_results = json.loads((tmp_path / "demo" / "demo_cot" / "results.json").read_text())
    assert cot_results["checkpoint"].endswith("last.ckpt"), "every method tested at its final checkpoint"
    coconut_cfg = (tmp_path / "demo" / "demo_coconut" / "config.yaml").read_text()
    assert "demo_cot/checkpoints/stage0.ckpt" in coconut_cfg and "start_epoch: 2" in coconut_cfg
    out = tmp_path / "demo"
    assert (out / "results.md").read_text().strip() == format_table(results)
    assert (out / "accuracy_vs_tokens.png").stat().st_size > 0
    assert list((out / "summary").glob("events.out.tfevents.*")), "the plot is in TensorBoard too"
    think = (out / "think.txt").read_text()
    assert think.count("thought ") == 2 and "gold:" in think
    printed = capsys.readouterr().out
    assert "| CoT | 16 |" in printed and "95 % interval over the test questions" in printed
    assert all(r["accuracy_std"] is None for r in results["rows"]), "one seed: an interval, not a std of one run"
    assert "thought 1:" in printed and "demo: seed 0 done after" in printed
    machine = json.loads((out / "demo_cot" / "run.json").read_text())["attempts"][0]["machine"]
    assert results["machines"] == [label(machine)] and f"Trained on: {label(machine)}." in printed

    check_think_command(tmp_path, capsys)

    # A second seed: seed 0's finished runs are reused (not trained again), seed 1's are new.
    before = (out / "demo_cot" / "results.json").stat().st_mtime_ns
    two = run_demo(demo_overrides(tmp_path), seeds=(0, 1))
    assert (out / "demo_cot" / "results.json").stat().st_mtime_ns == before
    assert (out / "demo_coconut_seed1" / "results.json").exists()
    assert two["seeds"] == [0, 1] and all(r["accuracy_std"] is not None for r in two["rows"])
    table = (out / "results.md").read_text()
    assert "mean +- std over seeds 0, 1" in table and "| seed | CoT |" in table
    assert "The means' order, seed by seed: " in table and table.count(" of 2;") == 2, "three pairs of methods"

    # A run of an earlier version, whose config.yaml lacks a setting added since, is read with the setting's default
    # (the earlier behaviour) and reused; a run whose setting differs is refused, naming it, before anything trains.
    config = out / "demo_cot" / "config.yaml"
    assert "  distractor: null\n" in config.read_text()
    config.write_text(config.read_text().replace("  distractor: null\n", ""))
    run_demo(demo_overrides(tmp_path), seeds=(0,))
    assert (out / "demo_cot" / "results.json").stat().st_mtime_ns == before
    config.write_text(config.read_text().replace("batch_by_length: true", "batch_by_length: false"))
    with pytest.raises(RunFolderError, match=r"demo_cot already holds a finished run .*; it is not reused because its "
                                             r"config has data\.batch_by_length=False where this demo's has True"):
        run_demo(demo_overrides(tmp_path), seeds=(0,))
    assert (out / "demo_cot" / "results.json").stat().st_mtime_ns == before


def check_think_command(tmp_path, capsys):
    """`coconut think` on the demo's runs: a test question scored, another not, a CoT run, a wrong folder."""
    run = tmp_path / "demo" / "demo_coconut"
    record = json.loads((tmp_path / "data" / "test.json").read_text())[3]
    assert main(["think", str(run), record["question"], "--top", "3"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("thought ")]
    assert len(lines) == 2 and all(line.count("|") == 2 for line in lines), "two thoughts, three tokens each"
    assert f"gold: {record['answer']}" in out
    assert main(["think", str(run), "c1 c2 ; ? p1 : c2 | c3", "--thoughts", "1"]) == 0
    out = capsys.readouterr().out
    assert out.count("thought ") == 1 and "gold" not in out, "a question not in the data is not scored"
    assert main(["think", str(tmp_path / "demo" / "demo_cot")]) == 0
    assert "no continuous thoughts" in capsys.readouterr().out
    assert main(["think", str(tmp_path / "nowhere")]) == 2


def test_margin_is_the_normal_95_interval():
    assert margin95(0.5, 100) == pytest.approx(0.098, abs=1e-3)
    assert margin95(1.0, 100) < 1e-4


def _rows(cot, coconut, no_cot, tokens=(10.0, 4.0, 2.0)):
    keys = ("cot", "coconut", "no_cot")
    return [{"key": k, "label": k, "final": True, "stage": 0, "train_steps": 10, "accuracy": a, "tokens": t,
             "language_tokens": t, "thoughts": 0.0} for k, a, t in zip(keys, (cot, coconut, no_cot), tokens)]


def test_seeds_give_mean_and_std_and_targets_say_what_is_met():
    seeds = [_rows(0.9, 0.98, 0.6), _rows(1.0, 1.0, 0.7)]
    rows = aggregate(seeds, n_test=100)
    cot = rows[0]
    assert cot["accuracy"] == pytest.approx(0.95) and cot["accuracy_std"] == pytest.approx(0.0707, abs=1e-4)
    assert cot["margin95"] is None and rows[1]["token_share"] == 0.4
    met = dict((what.split(":")[0], ok) for what, ok in targets(rows, seeds))
    headline = "COCONUT fully latent above CoT and No-CoT by more than the seeds' spread, on every seed"
    assert met == {headline: False, "COCONUT's generated tokens <= 0.4 of CoT's": True, "CoT >= 0.90": True}, \
        "COCONUT ties CoT on one seed and is 4 points above it with a CoT spread of 7: not above by the spread"
    clear = [_rows(0.60, 0.80, 0.55), _rows(0.64, 0.78, 0.50), _rows(0.58, 0.75, 0.60)]
    assert dict(targets(aggregate(clear, 100), clear))[next(w for w, _ in targets(aggregate(clear, 100), clear)
                                                          if w.startswith(headline))] is True
    one_seed_lower = clear[:2] + [_rows(0.58, 0.57, 0.50)]  # mean gap 0.14 > spread, yet CoT wins seed 2
    said, ok = targets(aggregate(one_seed_lower, 100), one_seed_lower)[0]
    assert ok is False and "above it on 2 of 3 seeds" in said
    single = aggregate([_rows(0.85, 0.80, 0.84, tokens=(10.0, 5.0, 2.0))], n_test=100)
    assert single[0]["accuracy_std"] is None and single[0]["margin95"] > 0
    checked = targets(single, [single])
    assert checked[0][1] is None and "needs two seeds or more" in checked[0][0], "one seed has no spread"
    assert not any(ok for _, ok in checked[1:]), "each other target fails here"


def test_the_seed_table_counts_the_seeds_that_keep_each_order():
    per_seed = {"0": _rows(0.60, 0.80, 0.55), "1": _rows(0.50, 0.78, 0.58), "2": _rows(0.58, 0.75, 0.52)}
    lines = seed_table(per_seed)
    assert lines[:3] == ["| seed | cot | coconut | no_cot |", "|---|---|---|---|", "| 0 | 0.600 | 0.800 | 0.550 |"]
    assert lines[-1] == ("The means' order, seed by seed: COCONUT (fully latent) > cot on 3 of 3; cot > no_cot on 2 "
                         "of 3; COCONUT (fully latent) > no_cot on 3 of 3.")


def test_the_demo_refuses_runs_of_unequal_training_before_anything_trains(tmp_path):
    from coconut.cli.demo import check_budget, demo_configs
    from coconut.config import ConfigError

    cfgs = demo_configs([f"output_dir={tmp_path}"], seed=1)
    assert cfgs["demo_coconut"].model.init_from == str(tmp_path / "demo_cot_seed1" / "checkpoints" / "stage0.ckpt")
    assert cfgs["demo_coconut"].trainer.start_epoch == cfgs["demo_cot"].trainer.first_stage_epochs
    check_budget(cfgs)
    cfgs["demo_no_cot"].trainer.max_epochs += 2
    with pytest.raises(ConfigError, match="must share trainer.max_epochs"):
        check_budget(cfgs)
    cfgs["demo_no_cot"].trainer.max_epochs -= 2
    check_budget(cfgs)
    cfgs["demo_cot"].data.batch_by_length = False
    with pytest.raises(ConfigError, match="data.batch_by_length"):
        check_budget(cfgs)


def test_the_table_names_each_machine_once_and_runs_that_recorded_none(tmp_path):
    from types import SimpleNamespace

    from coconut.cli.demo import machines

    here = {"cpu": "CPU A (family 6 model 1)", "threads": 2, "kernels": "AVX512"}
    other = {**here, "kernels": "AVX2", "kernel_variables": {"ATEN_CPU_CAPABILITY": "avx2"}}
    jobs = []
    for name, attempts in (("a", [here, here]), ("b", [other]), ("c", [None]), ("d", [here])):
        (tmp_path / name).mkdir()
        (tmp_path / name / "run.json").write_text(json.dumps({"attempts": [{"machine": m} for m in attempts]}))
        jobs.append((name, SimpleNamespace(run_dir=tmp_path / name), False))
    assert machines(jobs) == ["CPU A (family 6 model 1), 2 threads, AVX512 kernels",
                              "CPU A (family 6 model 1), 2 threads, AVX2 kernels (ATEN_CPU_CAPABILITY=avx2)",
                              "not recorded"]


def test_data_the_demo_would_not_train_on_is_refused_before_any_run_starts(tmp_path, capsys):
    from coconut.data.errors import DataError
    from coconut.data.files import ensure_data
    from coconut.experiment import load_config

    ensure_data(load_config("demo_cot", demo_overrides(tmp_path)).data)  # the demo's data, any distractor
    capsys.readouterr()
    with pytest.raises(DataError, match=r"train\.json: field 'distractor': generated with distractor any"):
        run_demo([*demo_overrides(tmp_path), "data.distractor=matched"], seeds=(0,))
    assert "training" not in capsys.readouterr().out and not (tmp_path / "demo").exists()
