"""The last partial batch of an epoch, trained by a real Lightning fit of the tiny model, as the release trains it.

The release (facebookresearch/coconut run.py) batches its training split without drop_last, divides every
micro-batch's loss by gradient_accumulation_steps and steps the optimizer on the epoch's last batch even when its
accumulation group is incomplete. data.drop_last=true drops the partial batch instead.

The tiny data has 64 training records; in batches of 10 that is 6 full batches and one of 4.
"""

import math

import lightning as L
import pytest
import torch

from coconut.train.datamodule import limit_batches, train_batches


class Seen(L.Callback):
    """Every batch's size, every optimizer step's learning rate, and at each step the accumulated gradients
    against the release's: the sum over the group's micro-batches of grad(loss) / accumulate_grad_batches."""

    def __init__(self):
        self.batches, self.steps, self.groups, self.group = [], [], [], []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.batches.append((trainer.current_epoch, len(batch["input_ids"])))
        self.group.append(batch)

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):  # before Lightning clips the gradients
        self.steps.append((trainer.current_epoch, optimizer.param_groups[0]["lr"]))
        params = [p for p in pl_module.engine.parameters() if p.requires_grad]
        release = [torch.zeros_like(p) for p in params]
        for batch in self.group:
            loss = pl_module.engine(batch["input_ids"], batch["attention_mask"], batch["labels"]).loss
            grads = torch.autograd.grad(loss / trainer.accumulate_grad_batches, params, allow_unused=True)
            release = [r + g if g is not None else r for r, g in zip(release, grads)]
        got = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        self.groups.append((len(self.group), all(torch.allclose(g, r, rtol=1e-4, atol=1e-7)
                                                 for g, r in zip(got, release))))
        self.group = []


def fit(tiny_system, accumulate: int, drop_last: bool, *extra: str, epochs: int = 1) -> Seen:
    _, module, datamodule, _ = tiny_system("method=cot", "data.batch_size=10",
                                           f"data.drop_last={str(drop_last).lower()}", *extra)
    seen = Seen()
    trainer = L.Trainer(accelerator="cpu", devices=1, max_epochs=epochs, accumulate_grad_batches=accumulate,
                        limit_val_batches=0, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, reload_dataloaders_every_n_epochs=1, num_sanity_val_steps=0,
                        callbacks=[seen])
    trainer.fit(module, datamodule=datamodule)
    assert trainer.num_training_batches == train_batches(64, 1, 10, drop_last), "the count check_steps and iCoT use"
    assert datamodule.icot_steps_per_epoch() == trainer.num_training_batches
    return seen


@pytest.mark.parametrize("accumulate, drop_last, sizes, steps", [
    (1, False, [10] * 6 + [4], 7),   # every sample once; a step on the partial batch
    (1, True, [10] * 6, 6),          # 4 samples dropped
    (3, False, [10] * 6 + [4], 3),   # groups of 3, 3 and 1 micro-batches: a step on the incomplete group
    (3, True, [10] * 6, 2),          # groups of 3 and 3
    (4, True, [10] * 6, 2),          # groups of 4 and 2: Lightning steps on an incomplete group even with drop_last
])
def test_an_epoch_trains_the_samples_and_takes_the_steps_the_release_takes(tiny_system, accumulate, drop_last,
                                                                           sizes, steps):
    seen = fit(tiny_system, accumulate, drop_last)
    assert [size for _, size in seen.batches] == sizes
    assert sum(sizes) == (60 if drop_last else 64)
    assert len(seen.steps) == steps == math.ceil(len(sizes) / accumulate)
    full, rest = divmod(len(sizes), accumulate)
    assert [n for n, _ in seen.groups] == [accumulate] * full + ([rest] if rest else [])
    # Every group, the incomplete last one included, is each micro-batch's loss / accumulate_grad_batches
    # (the release's `outputs.loss / configs.gradient_accumulation_steps`), not / the group's length.
    assert all(same for _, same in seen.groups)


def test_the_learning_rate_schedule_counts_the_incomplete_group_as_a_step(tiny_system):
    # 7 batches in groups of 3: 3 steps an epoch. optim=tiny restarts its warmup at each stage (an epoch here):
    # the first step of epoch 1 is step 3 and must get the rate of step 0 (with 7 // 3 = 2 steps an epoch it would
    # get that of step 1).
    seen = fit(tiny_system, 3, False, "optim.warmup_steps=3", epochs=2)
    lrs = [lr for _, lr in seen.steps]
    assert [epoch for epoch, _ in seen.steps] == [0, 0, 0, 1, 1, 1]
    assert lrs[3:] == pytest.approx(lrs[:3]) and lrs[0] < lrs[1] < lrs[2], "warmup restarts with the epoch's stage"


@pytest.mark.parametrize("examples, world, batch, drop_last, want", [
    (64, 1, 10, False, 7), (64, 1, 10, True, 6), (64, 1, 16, False, 4), (64, 1, 16, True, 4),
    (64, 3, 10, False, 3),  # 22 a rank (2 repeated): 10, 10, 2
    (64, 3, 10, True, 2),   # 21 a rank: 10, 10, one dropped
    (64, 3, 7, True, 3), (5, 2, 8, False, 1), (5, 2, 8, True, 0),
])
def test_batches_per_rank_are_what_the_loader_yields(examples, world, batch, drop_last, want):
    from torch.utils.data import DataLoader, DistributedSampler

    assert train_batches(examples, world, batch, drop_last) == want
    for rank in range(world):
        sampler = DistributedSampler(range(examples), world, rank, shuffle=False, drop_last=drop_last)
        assert len(DataLoader(range(examples), batch_size=batch, sampler=sampler, drop_last=drop_last)) == want


@pytest.mark.parametrize("limit", [None, 1.0, 0.5, 0.2, 1, 3, 10, 3.0, 100.0])
def test_limit_batches_reads_the_limit_as_lightning_does(limit):
    # The config holds trainer.limit_train_batches as a float (the demo's 100 is 100.0): Lightning reads a float
    # above 1 as a count of batches.
    from lightning.pytorch.trainer.connectors.data_connector import _parse_num_batches
    from lightning.pytorch.trainer.setup import _determine_batch_limits
    from lightning.pytorch.trainer.states import RunningStage

    lightning = _parse_num_batches(RunningStage.TRAINING, 7, _determine_batch_limits(limit, "limit_train_batches"))
    assert limit_batches(7, limit) == lightning


def test_the_paper_experiments_train_the_partial_batch_and_the_demo_drops_it():
    # The release: DataLoader(batch_size=...) and DistributedSampler(dataset) both without drop_last. The demo's
    # documented counts (100 steps of 128 samples an epoch) assume full batches; so do the quick start's.
    from coconut.experiment import experiment_names, load_config

    names = experiment_names()
    assert len(names) > 30
    for name in names:
        cpu_run = name.startswith("demo_") or name == "quickstart"
        assert load_config(name).data.drop_last is cpu_run, name
