"""Two-process DDP on CPU (gloo): training, validation generation on ranks with different batch shapes, synced metrics."""

import csv
import json
import math

import pytest

from coconut.experiment import load_config
from coconut.train.run import train
from tests.integration.checks import check_rescored, rescore
from tests.integration.tiny_run import tiny_overrides

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("lockstep", [False, True])
def test_two_process_ddp_trains_validates_and_logs(tmp_path, lockstep):
    # 23 validation questions over 2 ranks: the ranks see different prompts, lengths and batch shapes.
    # With lockstep (what FSDP uses) the ranks also make equal decoder calls throughout.
    cfg = load_config("demo_coconut", tiny_overrides(tmp_path, "trainer=ddp_cpu", "trainer.max_epochs=2",
                                                     "data.val_size=23", "data.eval_batch_size=5", "optim.lr=0.03",
                                                     f"trainer.lockstep={str(lockstep).lower()}"))
    assert (cfg.trainer.strategy, cfg.trainer.devices) == ("ddp_spawn", 2)
    results = train(cfg)
    rows = list(csv.DictReader((cfg.run_dir / "csv" / "metrics.csv").open()))
    val = [r for r in rows if r.get("val/acc")]
    assert len(val) == 2, "one synced validation row per epoch, written by rank 0"
    assert [float(r["val/thoughts"]) for r in val] == [0.0, 1.0]
    # Rank 0 measures its own first batch alone (outside the lock-step too): stage 1's validation has the figures.
    assert [bool(r.get("thoughts/norm_pos1")) for r in val] == [False, True]
    assert float(val[1]["thoughts/norm_ratio"]) > 0 and -1 <= float(val[1]["thoughts/cos_across"]) <= 1
    for r in val:
        assert float(r["val/tokens"]) == pytest.approx(float(r["val/language_tokens"]) + float(r["val/thoughts"]),
                                                       abs=1e-4)
    # The synced metrics of the last validation against its weights scored in one process, question by question.
    # The 23 questions are evened out to 24 by repeating the first one (equal batches on every rank), with weight
    # 0: the synced means are the means over the 23 questions, each counted once.
    # The larger optim.lr makes the questions' generations differ, so a miscount shows in the means.
    again = rescore(cfg, cfg.run_dir / "checkpoints" / "last.ckpt", "val")
    assert again["questions"] == 23
    miscounted = []
    for name, values in again["per_question"].items():
        assert float(val[-1][f"val/{name}"]) == pytest.approx(sum(values) / len(values), abs=1e-5), name
        padded = values + values[:1]  # what counting the repeated question would give
        miscounted.append(abs(sum(padded) / len(padded) - sum(values) / len(values)) > 1e-4)
    assert any(miscounted), "the check needs a repeated question unlike the mean, or a miscount would not show"
    train_rows = [r for r in rows if r.get("train/loss")]
    steps = sorted({int(r["step"]) for r in train_rows})
    assert steps[-1] == 2 * 64 // (16 * 2) - 1, "each rank takes half the batches"
    saved = json.loads((cfg.run_dir / "results.json").read_text())
    assert saved["test"]["test/thoughts"] == 1.0
    check_rescored(saved["test"], "test", cfg, saved["checkpoint"])  # the test runs in one process: no padding
    assert results["test"] == saved["test"]


@pytest.mark.parametrize("batch, per_rank, accumulate", [(8, 2, 2), (12, 6, 1)])
def test_two_processes_with_gradient_accumulation_match_one_process(tmp_path, batch, per_rank, accumulate):
    """Effective batch 8 as 1 process x 8, and as 2 processes x 2 x 2 accumulated micro-batches; effective batch
    12, which leaves a partial batch of 4 (64 records), as 1 process x 12 and as 2 processes x 6 (the last step:
    2 + 2 samples on the ranks, the single process's last 4).

    No-CoT samples all have three labelled tokens, so a mean over micro-batch means is the batch mean:
    the two runs must take the same optimizer steps (up to float summation order).
    """
    import torch

    common = ["method=no_cot", "trainer.max_epochs=2", "data.val_size=24", "data.eval_batch_size=12",
              "optim.warmup_steps=0", "data.drop_last=false"]
    one = load_config("demo_coconut", tiny_overrides(tmp_path, *common, "name=one", f"data.batch_size={batch}"))
    two = load_config("demo_coconut", tiny_overrides(tmp_path, *common, "name=two", f"data.batch_size={per_rank}",
                                                     "trainer=ddp_cpu", f"trainer.accumulate_grad_batches={accumulate}"))
    train(one)
    train(two)

    def val_losses(cfg):
        rows = list(csv.DictReader((cfg.run_dir / "csv" / "metrics.csv").open()))
        return [float(r["val/loss"]) for r in rows if r.get("val/loss")]

    assert len(val_losses(one)) == 2
    assert val_losses(one) == pytest.approx(val_losses(two), rel=1e-4)
    a = torch.load(one.run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    b = torch.load(two.run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert a["global_step"] == b["global_step"] == 2 * math.ceil(64 / batch)  # 2 x 8, or 2 x (5 full + 1 of 4)
    for name, value in a["state_dict"].items():
        assert torch.allclose(value, b["state_dict"][name], atol=2e-5, rtol=1e-4), name


def test_two_process_ddp_trains_step_supervision_through_stage_zero(tmp_path):
    # At stage 0 there is no thought, so the auxiliary decoder gets no gradient: DDP must expect unused parameters.
    cfg = load_config("demo_coconut", tiny_overrides(tmp_path, "trainer=ddp_cpu", "trainer.max_epochs=2",
                                                     "method.step_supervision=true", "latent.projection=false"))
    results = train(cfg)
    rows = list(csv.DictReader((cfg.run_dir / "csv" / "metrics.csv").open()))
    stepped = [float(r["train/step_loss"]) for r in rows if r.get("train/step_loss")]
    assert stepped[0] == 0.0 and stepped[-1] > 0, "no thought at stage 0, thoughts supervised at stage 1"
    assert results["test"]["test/thoughts"] == 1.0
    assert (cfg.run_dir / "step_decoder" / "step_decoder.json").exists()
