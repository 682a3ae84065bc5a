"""iCoT in the train layer without a Trainer run: the data module builds each batch's samples with the batch's
scheduled removal (the same after a resume), evaluates with the epoch's last count, picks final epochs where
every CoT is gone; the callback clears AdamW exactly where the count grows; build_trainer wires it for icot.

The tiny data: 64 training records in batches of 16, 4 batches a epoch, CoTs of 6 to 9 tokens."""

from types import SimpleNamespace

import pytest
import torch

from coconut.methods.icot_schedule import ALL
from coconut.engine.special_tokens import SpecialIds
from coconut.train.icot import IcotOptimizerReset
from tests.train.test_callbacks import RecordingLogger, stepped_optimizer

ICOT = ("method=icot", "method.icot_smoothing=0")


def cot(record):
    return [t for step in record.steps for t in step]


def expected(record, removed, eos):
    kept = cot(record)[min(len(cot(record)), removed):]
    return record.question + kept + record.answer + [eos]


def rows(batch):
    """Each row's tokens without padding."""
    return [ids[mask.bool()].tolist() for ids, mask in zip(batch["input_ids"], batch["attention_mask"])]


def test_each_batch_removes_its_scheduled_count(tiny_system, fake_trainer):
    # 2 a epoch over 4 batches: a token every round(4 / 2) = 2 batches, so epoch 1 (batches 4..7) removes 2, 2, 3, 3.
    _, _, datamodule, tokenizer = tiny_system(*ICOT, "method.icot_remove_per_epoch=2")
    eos, records = SpecialIds.from_tokenizer(tokenizer).eos, datamodule.splits["train"]
    fake_trainer(datamodule, epoch=1)
    assert datamodule.icot_steps_per_epoch() == 4
    batches, plan = list(datamodule.train_dataloader()), datamodule.icot_plan(1)
    assert sorted(plan.order) == list(range(64))
    for b, (batch, count) in enumerate(zip(batches, [2, 2, 3, 3])):
        got = rows(batch)
        want = [expected(records[plan.order[16 * b + j]], count, eos) for j in range(16)]
        assert got == want
        for row, labels, record in zip(got, batch["labels"], [records[i] for i in plan.order[16 * b:16 * b + 16]]):
            assert labels[len(record.question):len(row)].tolist() == row[len(record.question):]
            assert (labels[:len(record.question)] == -100).all(), "the question is not learned"


def test_under_ddp_a_batch_of_the_schedule_spans_the_ranks(tiny_system, fake_trainer):
    # 2 ranks: 2 batches of 16 per rank a epoch, a token every round(2 / 2) = 1 batch: epoch 1 removes 2 then 3,
    # and a rank's batch b holds positions of the one order within the step's 32 samples.
    _, _, datamodule, tokenizer = tiny_system(*ICOT, "method.icot_remove_per_epoch=2")
    eos, records = SpecialIds.from_tokenizer(tokenizer).eos, datamodule.splits["train"]
    for rank in (0, 1):
        fake_trainer(datamodule, epoch=1, world_size=2, global_rank=rank)
        plan = datamodule.icot_plan(1)
        assert datamodule.icot_steps_per_epoch() == 2 and plan.batch == 32
        for b, (batch, count) in enumerate(zip(datamodule.train_dataloader(), [2, 3])):
            positions = [(16 * b + j) * 2 + rank for j in range(16)]  # every second sample, as DistributedSampler
            assert rows(batch) == [expected(records[plan.order[p]], count, eos) for p in positions]


@pytest.mark.parametrize("world, drop_last, steps", [(1, False, 7), (1, True, 6), (3, False, 3), (3, True, 2)])
def test_the_removal_spreads_over_the_batches_really_trained(tiny_system, fake_trainer, world, drop_last, steps):
    # 64 records in batches of 10: 6 full and one of 4 (7 batches; 6 with drop_last); over 3 ranks 22 a rank with
    # 2 samples repeated (batches 10, 10, 2), or 21 (10, 10). As many tokens an epoch as batches: one a batch.
    _, _, datamodule, tokenizer = tiny_system(*ICOT, "data.batch_size=10", f"data.drop_last={str(drop_last).lower()}",
                                              f"method.icot_remove_per_epoch={steps}")
    eos, records = SpecialIds.from_tokenizer(tokenizer).eos, datamodule.splits["train"]
    for rank in range(world):
        fake_trainer(datamodule, epoch=0, world_size=world, global_rank=rank)
        batches, plan = list(datamodule.train_dataloader()), datamodule.icot_plan(0)
        assert datamodule.icot_steps_per_epoch() == len(batches) == steps
        for b, batch in enumerate(batches):  # batch b removes b tokens, the repeated samples included
            positions = [(10 * b + j) * world + rank for j in range(len(batch["input_ids"]))]
            assert rows(batch) == [expected(records[plan.order[p]], b, eos) for p in positions]
    if world == 3 and not drop_last:  # planned where they are trained: in the last batch, with its removal
        assert plan.order[64:] == plan.order[:2] and plan.removed[64:] == [2, 2] and plan.removed[:2] == [0, 0]
    assert len(plan.order) == (66 if world == 3 and not drop_last else 64)


def test_a_resumed_epoch_replays_the_same_batches(tiny_system, fake_trainer):
    def epoch_rows(epoch):  # a fresh system each time: nothing kept from a run before the resume
        _, _, datamodule, _ = tiny_system("method=icot")  # smoothing on: lambda 4
        fake_trainer(datamodule, epoch=epoch)
        return [rows(batch) for batch in datamodule.train_dataloader()]

    assert epoch_rows(2) == epoch_rows(2)
    assert epoch_rows(2) != epoch_rows(3)


def test_evaluation_removes_the_count_of_the_epochs_last_batch(tiny_system, fake_trainer):
    _, _, datamodule, tokenizer = tiny_system(*ICOT, "method.icot_remove_per_epoch=2")
    eos = SpecialIds.from_tokenizer(tokenizer).eos
    fake_trainer(datamodule, epoch=1)
    for (sample, _), record in zip(datamodule.eval_items("val"), datamodule.splits["val"]):
        assert sample.prompt == record.question, "generation starts from the question alone"
        assert sample.input_ids == expected(record, 3, eos)  # batch 7 // 2
    datamodule.freeze_stage(2)  # one epoch a stage here: the end of epoch 2, batch 11 // 2 = 5
    fake_trainer(datamodule, epoch=0)
    assert all(s.input_ids == expected(r, 5, eos) for (s, _), r in zip(datamodule.eval_items("val"),
                                                                         datamodule.splits["val"]))


def test_final_epochs_are_those_from_which_every_cot_is_gone(tiny_system, fake_trainer):
    _, _, datamodule, _ = tiny_system(*ICOT, "method.icot_remove_per_epoch=2", "method.icot_remove_all_beyond=5")
    # Counts at an epoch's last batch: 3 // 2 = 1, 7 // 2 = 3, 11 // 2 = 5 -> all.
    finals = []
    for epoch in range(4):
        fake_trainer(datamodule, epoch=epoch, max_epochs=10)
        finals.append(datamodule.in_final_stage)
    assert finals == [False, False, True, True]

    _, _, datamodule, _ = tiny_system(*ICOT, "method.icot_remove_per_epoch=2")
    longest = max(len(cot(r)) for r in datamodule.splits["train"])
    finals = []
    for epoch in range(8):
        fake_trainer(datamodule, epoch=epoch, max_epochs=10)
        finals.append(datamodule.in_final_stage)
    assert finals == [2 * e + 1 >= longest for e in range(8)] and finals[-1] and not finals[0]
    fake_trainer(datamodule, epoch=1, max_epochs=2)
    assert datamodule.in_final_stage, "a run too short to remove it all: its last epoch counts"


@pytest.mark.parametrize("limit, steps", [(None, 4), (1.0, 4), (0.5, 2), (3, 3), (10, 4)])
def test_an_epoch_is_as_long_as_lightning_cuts_it(tiny_system, fake_trainer, limit, steps):
    _, _, datamodule, _ = tiny_system(*ICOT)
    fake_trainer(datamodule, epoch=0, limit_train_batches=limit)
    assert datamodule.icot_steps_per_epoch() == steps


def drive(callback, datamodule, fake_trainer, epochs, steps=4, start_epoch=0):
    """Call the callback before every batch; (epoch, batch) where the optimizer state was found cleared."""
    optimizer, logger = stepped_optimizer(), RecordingLogger()
    cleared = []
    for epoch in range(start_epoch, epochs):
        trainer = fake_trainer(datamodule, epoch=epoch, optimizers=[optimizer], loggers=[logger])
        datamodule.train_dataloader()  # Lightning builds the epoch's loader first
        for b in range(steps):
            if not optimizer.state:  # refill after a reset, as the next optimizer step would
                optimizer.param_groups[0]["params"][0].grad = torch.ones(3)
                optimizer.step()
            trainer.global_step = epoch * steps + b
            callback.on_train_batch_start(trainer, None, None, b)
            if not optimizer.state:
                cleared.append((epoch, b))
    return cleared, logger


def test_the_optimizer_is_reset_exactly_when_the_count_grows(tiny_system, fake_trainer):
    # Counts by batch: 0 0 1 1 | 2 2 3 3 | 4 4 all all: growing at steps 2, 4, 6, 8, 10, never again; every CoT
    # (6 tokens at least) outlives a count of 4, so no batch before a growth had lost all its CoT.
    _, _, datamodule, _ = tiny_system(*ICOT, "method.icot_remove_per_epoch=2", "method.icot_remove_all_beyond=5")
    callback = IcotOptimizerReset()
    cleared, logger = drive(callback, datamodule, fake_trainer, epochs=4)
    assert cleared == [(0, 2), (1, 0), (1, 2), (2, 0), (2, 2)]
    assert [r["step"] for r in callback.resets] == [2, 4, 6, 8, 10] and callback.resets[-1]["removed"] == ALL
    logged = [(step, m["curriculum/icot_removed"]) for step, m in logger.logged]
    assert logged == [(0, 0.0), (2, 1.0), (4, 2.0), (6, 3.0), (8, 4.0), (10, -1.0), (12, -1.0)]

    # A run resumed at epoch 1 resets at the same batches: the decision needs nothing from before.
    _, _, resumed, _ = tiny_system(*ICOT, "method.icot_remove_per_epoch=2", "method.icot_remove_all_beyond=5")
    again, _ = drive(IcotOptimizerReset(), resumed, fake_trainer, epochs=4, start_epoch=1)
    assert again == [(1, 0), (1, 2), (2, 0), (2, 2)]


def test_no_reset_once_the_batch_before_had_lost_all_its_cot(tiny_system, fake_trainer):
    # 8 a epoch over 4 batches: round(0.5) = 0, so the count grows at every batch: step s removes s + 1.
    _, _, datamodule, _ = tiny_system(*ICOT)
    cleared, _ = drive(IcotOptimizerReset(), datamodule, fake_trainer, epochs=4)

    def longest_in(step):  # the longest CoT of a batch (CoTs are 6 to 9 tokens)
        fake_trainer(datamodule, epoch=step // 4)
        return max(datamodule.icot_plan(step // 4).cot_lengths[16 * (step % 4):16 * (step % 4) + 16])

    steps = [4 * e + b for e, b in cleared]
    # Step 0 resets (0 -> 1); step s > 0 resets when batch s - 1, which removed s tokens, kept some CoT.
    assert steps == [0] + [s for s in range(1, 16) if longest_in(s - 1) > s]
    assert steps[:6] == [0, 1, 2, 3, 4, 5], "every CoT is longer than 5 tokens"
    assert not [s for s in steps if s >= 10], "from step 9 on the batch before removed 9 or more: all of it"


def test_a_stand_in_schedule_resets_only_after_a_batch_that_kept_cot():
    counts = {(0, 0): 0, (0, 1): 1, (0, 2): 1, (1, 0): 2, (1, 1): 3, (1, 2): 4}
    kept = {(0, 0): True, (0, 1): True, (0, 2): True, (1, 0): False, (1, 1): True, (1, 2): True}
    plan = lambda e: SimpleNamespace(all_removed=lambda b: not kept[(e, b)])  # noqa: E731
    datamodule = SimpleNamespace(icot_removal=lambda e, b: counts[(e, b)], icot_steps_per_epoch=lambda: 3,
                                 icot_plan=plan)
    optimizer = stepped_optimizer()
    trainer = SimpleNamespace(datamodule=datamodule, optimizers=[optimizer], loggers=[], global_step=0)
    cleared = []
    for epoch, b in counts:
        if not optimizer.state:
            optimizer.param_groups[0]["params"][0].grad = torch.ones(3)
            optimizer.step()
        trainer.current_epoch = epoch
        IcotOptimizerReset().on_train_batch_start(trainer, None, None, b)
        cleared.append(not optimizer.state)
    # (0,1): 0 -> 1; (0,2): no growth; (1,0): 1 -> 2 after a batch with CoT; (1,1): 2 -> 3 but (1,0) had none
    # left; (1,2): 3 -> 4.
    assert cleared == [False, True, False, True, False, True]


def test_build_trainer_wires_the_resets_for_icot_only(tmp_path):
    from coconut.experiment import load_config
    from coconut.run_dir import RunDir
    from coconut.train.callbacks import CurriculumCallback
    from coconut.train.trainer import build_trainer

    def callbacks(*overrides):
        cfg = load_config("demo_coconut", ["trainer=cpu", f"output_dir={tmp_path}", *overrides])
        return build_trainer(cfg, RunDir(tmp_path / "run")).callbacks

    icot = callbacks("method=icot", "optim.reset=epoch")
    assert sum(isinstance(c, IcotOptimizerReset) for c in icot) == 1
    assert next(c for c in icot if isinstance(c, CurriculumCallback)).reset == "never", "no per-epoch reset on top"
    coconut = callbacks()
    assert not any(isinstance(c, IcotOptimizerReset) for c in coconut)
    assert next(c for c in coconut if isinstance(c, CurriculumCallback)).reset != "never"


@pytest.mark.parametrize("data, epochs, threshold", [("prosqa", 50, None), ("prontoqa", 50, None), ("gsm8k", 25, 39)])
def test_the_experiment_files_follow_the_release(data, epochs, threshold):
    from coconut.experiment import load_config

    cfg = load_config(f"{data}_icot")
    m, o = cfg.method, cfg.optim
    assert (m.name, m.icot_remove_per_epoch, m.icot_smoothing, m.icot_remove_all_beyond) == ("icot", 8, 4, threshold)
    assert (o.lr, o.grad_clip, o.reset, o.weight_decay, o.decay_all) == (5e-5, 1.0, "never", 0.01, True)
    assert cfg.trainer.max_epochs == epochs and epochs % cfg.trainer.epochs_per_stage == 0, \
        "whole stages: a checkpoint of the last stage is evaluated with the count of that stage's last epoch"
