"""CurriculumDataModule without a Trainer run: the stage follows the schedule of the trainer's epoch (or a
frozen one), the training samples carry the stage's thoughts, evaluation items are built at the stage."""

import pytest

from coconut.engine.special_tokens import SpecialIds


def latent_counts(batch, latent_id):
    return (batch["input_ids"] == latent_id).sum(dim=1).tolist()


def test_the_stage_follows_the_schedule_of_the_trainers_epoch(tiny_system, fake_trainer):
    cfg, _, datamodule, _ = tiny_system("trainer.first_stage_epochs=3", "trainer.epochs_per_stage=2",
                                        "trainer.max_epochs=9")
    assert datamodule.trainer is None and datamodule.stage == 0, "no trainer yet: epoch 0"
    stages = []
    for epoch in range(9):
        fake_trainer(datamodule, epoch=epoch)
        stages.append(datamodule.stage)
        assert datamodule.in_final_stage == (datamodule.stage >= 3), "final stage: max_latent_stage + 1"
    assert stages == [0, 0, 0, 1, 1, 2, 2, 3, 3]
    assert datamodule.final_stage == cfg.final_stage() == 3


def test_a_frozen_stage_holds_whatever_the_epoch(tiny_system, fake_trainer):
    _, _, datamodule, _ = tiny_system()
    datamodule.freeze_stage(1)
    for epoch in (0, 3, 7):
        fake_trainer(datamodule, epoch=epoch)
        assert datamodule.stage == 1 and not datamodule.in_final_stage
    datamodule.freeze_stage(3)
    assert datamodule.stage == 3 and datamodule.in_final_stage


@pytest.mark.parametrize("per_step", [1, 2])
def test_training_samples_carry_the_stages_thoughts(tiny_system, fake_trainer, per_step):
    cfg, _, datamodule, tokenizer = tiny_system(f"method.thoughts_per_step={per_step}")
    latent = SpecialIds.from_tokenizer(tokenizer).latent
    for epoch, stage in enumerate([0, 1, 2, 3]):  # one epoch per stage; past max_latent_stage=2 it stays at 2
        fake_trainer(datamodule, epoch=epoch)
        batches = list(datamodule.train_dataloader())
        assert len(batches) == 64 // 16, "every record once, in full batches"
        want = min(stage, cfg.method.max_latent_stage) * per_step  # padded to the stage's count (pad_latent_to_max)
        for batch in batches:
            assert batch["num_thoughts"].tolist() == [want] * 16
            assert latent_counts(batch, latent) == [want] * 16
            assert batch["stage"].tolist() == [stage] * 16


def test_each_epoch_has_its_own_order_and_an_epoch_replays_identically(tiny_system, fake_trainer):
    _, _, datamodule, _ = tiny_system()

    def order(epoch):
        fake_trainer(datamodule, epoch=epoch)
        pad = datamodule.collate.pad_id
        return [[t for t in row.tolist() if t != pad] for batch in datamodule.train_dataloader()
                for row in batch["input_ids"]]

    assert order(3) == order(3), "seeded by (seed, epoch): a resumed epoch sees the same batches"
    # Epochs 3 and 4 are both past the last latent stage: the same samples, shuffled anew.
    assert sorted(order(3)) == sorted(order(4)) and order(3) != order(4)


def test_ranks_take_disjoint_halves_of_one_shuffled_order(tiny_system, fake_trainer):
    _, _, datamodule, _ = tiny_system()

    pad = datamodule.collate.pad_id

    def rows(world_size, rank):
        """The samples a rank trains on in order, without the padding (which depends on the batch)."""
        fake_trainer(datamodule, epoch=1, world_size=world_size, global_rank=rank)
        return [tuple(t for t in row.tolist() if t != pad) for batch in datamodule.train_dataloader()
                for row in batch["input_ids"]]

    one = rows(1, 0)
    halves = [rows(2, r) for r in (0, 1)]
    assert [len(h) for h in halves] == [32, 32]
    assert sorted(halves[0] + halves[1]) == sorted(one), "together the ranks see every sample once"
    # Rank r takes every second sample of the single process's order: the ranks' micro-batches of one step
    # hold the samples one process would batch.
    assert halves[0] == one[0::2] and halves[1] == one[1::2]


@pytest.mark.parametrize("drop_last", [False, True])
def test_a_split_that_does_not_divide_over_the_ranks_is_evened_out_as_the_release_does(tiny_system, fake_trainer,
                                                                                       drop_last):
    # 64 samples over 3 ranks in batches of 10. The release's DistributedSampler (drop_last=False) repeats the
    # first 2 samples of the order: 22 a rank, batches of 10, 10 and 2. drop_last=true: 21 a rank, batches of 10, 10.
    _, _, datamodule, _ = tiny_system("data.batch_size=10", f"data.drop_last={str(drop_last).lower()}")
    pad = datamodule.collate.pad_id

    def batches(world_size, rank):
        fake_trainer(datamodule, epoch=1, world_size=world_size, global_rank=rank)
        return [[tuple(t for t in row.tolist() if t != pad) for row in batch["input_ids"]]
                for batch in datamodule.train_dataloader()]

    one = [row for batch in batches(1, 0) for row in batch]
    assert len(one) == (60 if drop_last else 64), "one process: every sample once, the last batch of 4 included"
    ranks = [batches(3, r) for r in range(3)]
    assert [[len(b) for b in r] for r in ranks] == [[10, 10] if drop_last else [10, 10, 2]] * 3
    order = one if drop_last else one + one[:2]
    for step in range(len(ranks[0])):
        # A step's micro-batches over the ranks hold the single process's positions 30 * step ... (the last
        # step: its last partial batch of 4, and the 2 repeated samples; dropped with drop_last).
        together = sorted(row for r in ranks for row in r[step])
        assert together == sorted(order[30 * step:30 * step + 30])
    held = [row for r in ranks for b in r for row in b]
    assert len(held) == (60 if drop_last else 66) and set(held) <= set(one)


def test_evaluation_items_are_built_at_the_frozen_stage(tiny_system, fake_trainer):
    _, _, datamodule, tokenizer = tiny_system()
    ids = SpecialIds.from_tokenizer(tokenizer)
    fake_trainer(datamodule, epoch=0)
    datamodule.freeze_stage(2)
    items = datamodule.eval_items("val")
    assert len(items) == 24 and [a for _, a in items] == datamodule.answers["val"]
    for sample, _ in items:
        assert sample.num_thoughts == 2 and sample.stage == 2
        assert sample.prompt[-4:] == [ids.start, ids.latent, ids.latent, ids.end], "the prompt ends with the thoughts"
        assert sample.input_ids == sample.prompt + sample.target
    limited = [b for b in datamodule.eval_loader("val", limit=5)]
    assert sum(len(b["answers"]) for b in limited) == 5
    val = list(datamodule.val_dataloader())
    assert [len(b["answers"]) for b in val] == [12, 12], "eval_batch_size 12"
    assert (val[0]["prompt_input_ids"] == ids.latent).sum(dim=1).tolist() == [2] * 12
    test = [a for b in datamodule.test_dataloader() for a in b["answers"]]
    assert test == datamodule.answers["test"] and len(test) == 24


@pytest.mark.parametrize("world, limit", [(2, 23), (5, None), (7, 3)])
def test_under_ddp_every_question_is_evaluated_with_weight_one_exactly_once(tiny_system, fake_trainer, world, limit):
    # 23 questions over 2 ranks, 24 over 5, 3 over 7: the ranks make equal numbers of batches (FSDP's lockstep),
    # evened out by repeating the first questions, which weigh 0 in the metrics.
    _, _, datamodule, _ = tiny_system("data.eval_batch_size=5")
    fake_trainer(datamodule, epoch=0)
    answers = [a for b in datamodule.eval_loader("val", limit) for a in b["answers"]]
    ranks = []
    for rank in range(world):
        fake_trainer(datamodule, epoch=0, world_size=world, global_rank=rank)
        ranks.append([(a, float(w)) for b in datamodule.eval_loader("val", limit)
                      for a, w in zip(b["answers"], b["weights"])])
    assert len({len(r) for r in ranks}) == 1, "as many questions, so as many batches, on every rank"
    held = [(rank, position) for rank, r in enumerate(ranks) for position in range(len(r))]
    in_order = sorted(held, key=lambda rp: rp[1] * world + rp[0])  # rank r holds positions r, r + world, ...
    weighted = [ranks[r][p] for r, p in in_order]
    n = len(answers)
    assert [a for a, w in weighted if w == 1.0] == answers, "every question once with weight 1, in order"
    assert [a for a, w in weighted if w == 0.0] == [answers[i % n] for i in range(len(weighted) - n)]
    assert len(weighted) == -(-n // world) * world


def test_each_stage_tokenises_only_the_splits_it_reads(tiny_system):
    # Evaluating a checkpoint must not tokenise the training set (31 s per demo row before; the saved tokenizer
    # misses the `datasets` cache the in-memory one filled).
    from coconut.train.build import build_system

    cfg, _, fitted, _ = tiny_system()
    assert set(fitted.splits) == {"train", "val"}, "fit reads train and val"
    _, testing, _ = build_system(cfg)
    testing.setup("test")
    assert set(testing.splits) == {"test"} and testing.test_split == "test"
    assert len(testing.eval_items("val")) == 24 and set(testing.splits) == {"test", "val"}, "loaded on first use"


def test_batches_by_length_hold_the_same_samples_with_less_padding(tiny_system, fake_trainer):
    pad_counts, orders = {}, {}
    for grouped in (False, True):
        _, _, datamodule, _ = tiny_system(f"data.batch_by_length={str(grouped).lower()}")
        pad = datamodule.collate.pad_id

        def epoch_rows(epoch):
            fake_trainer(datamodule, epoch=epoch)
            batches = list(datamodule.train_dataloader())
            rows = [tuple(t for t in row.tolist() if t != pad) for b in batches for row in b["input_ids"]]
            return rows, sum(int((b["input_ids"] == pad).sum()) for b in batches)

        orders[grouped], pad_counts[grouped] = epoch_rows(3)
        assert epoch_rows(3)[0] == orders[grouped], "seeded by (seed, epoch): a resumed epoch replays"
    assert sorted(orders[True]) == sorted(orders[False]), "every sample once an epoch, as without grouping"
    assert orders[True] != orders[False]
    assert pad_counts[True] < pad_counts[False] / 2, f"padding tokens: {pad_counts}"


def test_batches_by_length_group_a_whole_step_over_the_ranks(tiny_system, fake_trainer):
    # Grouped by the samples of one optimizer step: 2 ranks in batches of 16 train, step by step, the batches of 32
    # a single process trains, so an effective batch trains the same whatever the number of devices.
    def batches(batch_size, world_size, rank):
        _, _, datamodule, _ = tiny_system("data.batch_by_length=true", f"data.batch_size={batch_size}")
        pad = datamodule.collate.pad_id
        fake_trainer(datamodule, epoch=3, world_size=world_size, global_rank=rank)
        return [sorted(tuple(t for t in row.tolist() if t != pad) for row in b["input_ids"])
                for b in datamodule.train_dataloader()]

    single = batches(32, 1, 0)
    ranks = [batches(16, 2, r) for r in (0, 1)]
    assert [sorted(a + b) for a, b in zip(*ranks)] == single
