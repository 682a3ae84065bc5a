"""The curriculum's callbacks without a Trainer run: the optimizer is reset exactly at stage changes, best
checkpoints are chosen within the final stage only, and a checkpoint is saved at each stage's end."""

from types import SimpleNamespace

import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from coconut.run_dir import RunDir
from coconut.schedule import StageSchedule
from coconut.train.callbacks import CurriculumCallback, FinalStageCheckpoint, StageCheckpoint


class RecordingLogger:
    def __init__(self):
        self.logged = []

    def log_metrics(self, metrics, step):
        self.logged.append((step, dict(metrics)))


def stepped_optimizer():
    """An AdamW that has taken a step, so it holds moment estimates."""
    weight = torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.AdamW([weight], lr=0.1)
    weight.sum().backward()
    optimizer.step()
    return optimizer


def run_epochs(callback, stages, steps_per_epoch=4, accumulate=1):
    """Train epochs at the given stages (`accumulate` micro-batches per optimizer step); returns per epoch whether
    the optimizer state was cleared, and the logger."""
    logger = RecordingLogger()
    optimizer = stepped_optimizer()
    trainer = SimpleNamespace(datamodule=SimpleNamespace(stage=None), optimizers=[optimizer], loggers=[logger],
                              current_epoch=0, global_step=0)
    cleared = []
    for epoch, stage in enumerate(stages):
        if not optimizer.state:  # refill after a reset, as the next optimizer step would
            optimizer.param_groups[0]["params"][0].grad = torch.ones(3)
            optimizer.step()
        trainer.current_epoch, trainer.global_step, trainer.datamodule.stage = epoch, epoch * steps_per_epoch, stage
        callback.on_train_epoch_start(trainer, None)
        cleared.append(not optimizer.state)
        for batch in range(steps_per_epoch * accumulate):
            trainer.global_step = epoch * steps_per_epoch + batch // accumulate
            callback.on_train_batch_start(trainer, None, {}, batch)
        callback.on_train_epoch_end(trainer, None)
    return cleared, logger


def test_the_optimizer_is_reset_exactly_when_the_stage_changes():
    callback = CurriculumCallback(reset="stage", seed=0)
    cleared, logger = run_epochs(callback, [0, 0, 1, 1, 1, 2, 3])
    assert cleared == [False, False, True, False, False, True, True]
    assert callback.transitions == [{"epoch": 2, "step": 8, "from": 0, "to": 1},
                                    {"epoch": 5, "step": 20, "from": 1, "to": 2},
                                    {"epoch": 6, "step": 24, "from": 2, "to": 3}]
    assert callback.stage == 3
    # The stage is logged once at every optimizer step, on the losses' step axis: one value per step, a step
    # function in TensorBoard (stage 1 from step 8, the first step of epoch 2).
    logged = [(step, m["curriculum/stage"]) for step, m in logger.logged]
    assert logged == [(step, float([0, 0, 1, 1, 1, 2, 3][step // 4])) for step in range(28)]


def test_the_stage_is_logged_once_per_optimizer_step_under_gradient_accumulation():
    _, logger = run_epochs(CurriculumCallback(reset="stage", seed=0), [0, 1], steps_per_epoch=2, accumulate=3)
    assert [(step, m["curriculum/stage"]) for step, m in logger.logged] == [(0, 0.0), (1, 0.0), (2, 1.0), (3, 1.0)]


def test_without_reset_the_optimizer_keeps_its_state_but_transitions_are_recorded():
    callback = CurriculumCallback(reset="never", seed=0)
    cleared, _ = run_epochs(callback, [0, 1, 2])
    assert cleared == [False, False, False]
    assert [(t["from"], t["to"]) for t in callback.transitions] == [(0, 1), (1, 2)]


def test_reset_every_epoch_as_the_release_gives_a_fresh_adamw_at_each_epoch():
    callback = CurriculumCallback(reset="epoch", seed=0)
    cleared, _ = run_epochs(callback, [0, 0, 1, 1])
    assert cleared == [True, True, True, True], "the release re-creates AdamW inside its epoch loop"
    assert [(t["from"], t["to"]) for t in callback.transitions] == [(0, 1)]

    # After the reset, a step is exactly the first step of a new AdamW (bias correction restarts at step 1).
    def weights_after(optimizer_state_cleared: bool) -> torch.Tensor:
        weight = torch.nn.Parameter(torch.ones(3))
        optimizer = torch.optim.AdamW([weight], lr=0.1, weight_decay=0.01)
        for grad in (torch.tensor([1.0, -2.0, 3.0]), torch.tensor([0.5, 0.5, -1.0])):
            weight.grad = grad
            optimizer.step()
        start = weight.detach().clone()
        trainer = SimpleNamespace(datamodule=SimpleNamespace(stage=0), optimizers=[optimizer], loggers=[],
                                  current_epoch=1, global_step=2)
        if optimizer_state_cleared:
            callback.on_train_epoch_start(trainer, None)
        weight.grad = torch.tensor([2.0, 1.0, -4.0])
        optimizer.step()
        return start, weight.detach()

    start, after = weights_after(True)
    # A fresh AdamW's first step moves each weight by lr * (g / |g|) (m/(1-b1) = g, v/(1-b2) = g^2) plus decay.
    expected = start * (1 - 0.1 * 0.01) - 0.1 * torch.sign(torch.tensor([2.0, 1.0, -4.0])) * (1 - 1e-8)
    torch.testing.assert_close(after, expected, rtol=0, atol=1e-6)
    start, kept = weights_after(False)
    assert not torch.allclose(kept, start * (1 - 0.1 * 0.01) - 0.1 * torch.sign(torch.tensor([2.0, 1.0, -4.0])),
                              atol=1e-3), "without the reset the old moments change the step"


def test_unknown_reset_is_refused():
    with pytest.raises(ValueError, match="epoch, stage or never"):
        CurriculumCallback(reset="sometimes", seed=0)


def test_each_epoch_reseeds_torch_from_seed_and_epoch():
    callback = CurriculumCallback(reset="stage", seed=3)
    trainer = SimpleNamespace(datamodule=SimpleNamespace(stage=0), optimizers=[], loggers=[], current_epoch=5,
                              global_step=0)
    callback.on_train_epoch_start(trainer, None)
    drawn = torch.rand(4)
    torch.manual_seed(3 * 1_000_003 + 5)
    assert torch.equal(drawn, torch.rand(4)), "an epoch replayed after a resume draws the same dropout masks"


def test_state_dict_round_trip_continues_the_stage_without_a_reset():
    callback = CurriculumCallback(reset="stage", seed=0, auto_thought_scale=True)
    callback.scale_measured = True  # as after its first batch with thoughts
    run_epochs(callback, [0, 1, 1])
    resumed = CurriculumCallback(reset="stage", seed=0, auto_thought_scale=True)
    resumed.load_state_dict(callback.state_dict())
    assert (resumed.stage, resumed.transitions, resumed.scale_measured) == (1, callback.transitions, True)
    cleared, _ = run_epochs(resumed, [1, 2])
    assert cleared == [False, True], "a resumed run at the same stage keeps the optimizer state it restored"
    assert resumed.transitions[-1]["to"] == 2 and len(resumed.transitions) == 2
    fresh = CurriculumCallback(reset="stage", seed=0)
    fresh.load_state_dict({})
    assert (fresh.stage, fresh.transitions, fresh.scale_measured) == (None, [], False), "old checkpoints load"


@pytest.mark.parametrize("hook", ["on_validation_end", "on_train_epoch_end"])
def test_best_checkpoints_are_chosen_within_the_final_stage_only(tmp_path, monkeypatch, hook):
    calls = []
    monkeypatch.setattr(ModelCheckpoint, hook, lambda self, trainer, module: calls.append((trainer, module)))
    callback = FinalStageCheckpoint(dirpath=tmp_path, filename="best", monitor="val/acc", mode="max")
    trainer = SimpleNamespace(datamodule=SimpleNamespace(in_final_stage=False))
    module = object()
    getattr(callback, hook)(trainer, module)
    assert calls == [], "before the final stage ModelCheckpoint is not asked to save"
    trainer.datamodule.in_final_stage = True
    getattr(callback, hook)(trainer, module)
    assert calls == [(trainer, module)]


def test_a_checkpoint_is_saved_at_the_end_of_each_stage_and_of_training(tmp_path):
    schedule = StageSchedule(epochs_per_stage=2, first_stage_epochs=3)
    run_dir = RunDir(tmp_path / "run")
    callback = StageCheckpoint(run_dir, schedule)
    saved, weights_only = [], []

    def save_checkpoint(path, **options):
        saved.append(path)
        weights_only.append(options.get("weights_only"))

    trainer = SimpleNamespace(max_epochs=8, datamodule=SimpleNamespace(stage=0), save_checkpoint=save_checkpoint,
                              num_training_batches=4, fit_loop=epoch_progress(ready=4))
    for epoch in range(8):  # stages 0 0 0 1 1 2 2 3; the run stops inside stage 3
        trainer.current_epoch, trainer.datamodule.stage = epoch, schedule.stage(epoch)
        callback.on_train_epoch_end(trainer, None)
    # The whole state, said explicitly (left unset, Lightning logs that it defaults to it, at every save).
    assert weights_only == [False] * 4
    assert saved == [run_dir.checkpoints / f"stage{k}.ckpt" for k in (0, 1, 2, 3)]
    assert [p.name for p in saved] == ["stage0.ckpt", "stage1.ckpt", "stage2.ckpt", "stage3.ckpt"]


def epoch_progress(ready: int, last: bool = False):
    """A trainer's fit loop as far as StageCheckpoint reads it: batches trained in the epoch, whether it ran out."""
    progress = SimpleNamespace(is_last_batch=last, current=SimpleNamespace(ready=ready))
    return SimpleNamespace(epoch_loop=SimpleNamespace(batch_progress=progress))


def test_no_stage_checkpoint_when_max_steps_cuts_the_stages_last_epoch_short(tmp_path):
    """trainer.max_steps stops inside epoch 1, which would end stage 1: the stage did not end, no stage1.ckpt."""
    schedule = StageSchedule(epochs_per_stage=1)
    saved = []
    trainer = SimpleNamespace(max_epochs=4, current_epoch=1, datamodule=SimpleNamespace(stage=1),
                              save_checkpoint=lambda path, **options: saved.append(path), num_training_batches=4,
                              fit_loop=epoch_progress(ready=1))
    StageCheckpoint(RunDir(tmp_path / "run"), schedule).on_train_epoch_end(trainer, None)
    assert saved == []
    trainer.fit_loop = epoch_progress(ready=4)  # the same epoch trained through ends the stage
    StageCheckpoint(RunDir(tmp_path / "run"), schedule).on_train_epoch_end(trainer, None)
    assert [p.name for p in saved] == ["stage1.ckpt"]
