"""iCoT's removal schedule (Deng et al.'s release, src/train.py) by hand: the count per batch, the remove-all
threshold, the smoothing offsets, the epoch plan, when AdamW is reset and which epochs count as final."""

import math
import random

import pytest

from coconut.config import MethodConfig
from coconut.methods.icot_schedule import (ALL, EpochPlan, batches_per_token, epoch_is_final, plan_epoch,
                                        previous_batch, reset_due, scheduled_removal, smoothing_offset)


def icot(**kw):
    kw.setdefault("icot_smoothing", 0.0)
    return MethodConfig(name="icot", **kw)


# The release: one more token every int(round(steps_per_epoch / 8)) batches, counted from the first batch.
@pytest.mark.parametrize("steps, epoch, batch, count", [
    (10, 0, 0, 0), (10, 0, 1, 1), (10, 0, 9, 9), (10, 2, 3, 23),  # round(1.25) = 1: ten a epoch, not eight
    (100, 0, 11, 0), (100, 0, 12, 1), (100, 0, 99, 8),  # round(12.5) = 12 (half to even), not 13
    (100, 1, 0, 8), (100, 1, 8, 9), (100, 2, 99, 24),  # 108 // 12 = 9, 299 // 12 = 24: the count runs on
    (30, 1, 0, 7), (30, 1, 2, 8),  # round(3.75) = 4: 30 // 4 = 7, 32 // 4 = 8
    (4, 0, 0, 1), (4, 1, 3, 8),  # round(0.5) = 0: one more at every batch, the first one included
])
def test_the_count_grows_within_the_epoch(steps, epoch, batch, count):
    assert scheduled_removal(epoch, batch, steps, icot()) == count


def test_fractional_tokens_per_epoch():
    half = icot(icot_remove_per_epoch=0.5)  # a token every 20 batches of 10 a epoch
    assert batches_per_token(10, half) == 20
    assert [scheduled_removal(e, b, 10, half) for e, b in [(1, 9), (2, 0), (3, 9), (4, 0)]] == [0, 1, 1, 2]


def test_every_token_goes_from_the_threshold_on():
    gsm8k = icot(icot_remove_all_beyond=39)
    assert scheduled_removal(3, 8, 10, gsm8k) == 38
    assert scheduled_removal(3, 9, 10, gsm8k) == ALL  # the count reaches 39
    assert scheduled_removal(7, 0, 10, gsm8k) == ALL
    assert scheduled_removal(4, 67, 100, gsm8k) == 38  # 467 // 12
    assert scheduled_removal(4, 68, 100, gsm8k) == ALL  # 468 // 12 = 39
    assert scheduled_removal(0, 0, 10, icot(icot_remove_all_beyond=0)) == ALL
    assert scheduled_removal(1000, 0, 10, icot()) == 10000, "no threshold: the count just grows"


def test_smoothing_offsets_follow_exp_minus_lambda_truncated_at_99():
    rng = random.Random(0)
    draws = [smoothing_offset(rng, 1.0) for _ in range(20000)]
    # P(o) = (1 - e^-1) e^-o: P(0) = 0.632, P(1)/P(0) = e^-1.
    assert abs(draws.count(0) / len(draws) - 0.632) < 0.015
    assert abs(draws.count(1) / draws.count(0) - math.exp(-1)) < 0.03
    flat = [smoothing_offset(rng, 0.001) for _ in range(5000)]
    # The release truncates at 100 values with the tail's mass on 99: P(99) = e^(-0.001 * 99) = 0.906.
    assert max(flat) == 99 and abs(flat.count(99) / len(flat) - 0.906) < 0.02
    assert {smoothing_offset(rng, 0.0) for _ in range(100)} == {0}, "0 turns it off"
    assert {smoothing_offset(rng, math.inf) for _ in range(100)} == {0}, "as the release's default lambda inf"


class Unshuffled(random.Random):
    def shuffle(self, x):  # keep the records' order, so each position's record is known by hand
        pass


LENGTHS = [0, 3, 5, 10, 2, 8]  # the CoT lengths of six records


def test_an_epoch_plan_removes_each_batchs_count():
    method = icot(icot_remove_per_epoch=3)  # 3 batches of 2 a epoch: a token every batch, count = 3e + b
    plan = plan_epoch(LENGTHS, 1, 3, 2, method, Unshuffled(0))
    assert plan == EpochPlan(order=[0, 1, 2, 3, 4, 5], removed=[3, 3, 4, 4, 5, 5], cot_lengths=LENGTHS, batch=2)
    # batch 0: 0 <= 3 and 3 <= 3; batch 1: 5 > 4; batch 2: 8 > 5
    assert [plan.all_removed(b) for b in range(3)] == [True, False, False]
    later = plan_epoch(LENGTHS, 2, 3, 2, method, Unshuffled(0))
    assert later.removed == [6, 6, 7, 7, 8, 8]
    assert [later.all_removed(b) for b in range(3)] == [True, False, True]  # 10 > 7; 8 <= 8


def test_an_epoch_plan_is_shuffled_and_smoothed_by_its_rng_alone():
    method = icot(icot_remove_per_epoch=10, icot_smoothing=1.0)
    lengths = list(range(40))
    plan = plan_epoch(lengths, 1, 10, 4, method, random.Random(7))
    assert plan == plan_epoch(lengths, 1, 10, 4, method, random.Random(7)), "the same seed, the same epoch"
    assert sorted(plan.order) == lengths and plan.order != lengths
    assert plan.cot_lengths == [lengths[i] for i in plan.order]
    batches_of = [p // 4 for p in range(40)]
    base = [scheduled_removal(1, b, 10, method) for b in batches_of]  # 10 a epoch: 10 + batch
    offsets = [n - c for n, c in zip(plan.removed, base)]
    assert base[:5] == [10, 10, 10, 10, 11] and min(offsets) == 0 and max(offsets) > 0


def test_the_reset_fires_when_the_count_grows_unless_the_last_batch_had_no_cot_left():
    assert reset_due(1, 0, False) and reset_due(ALL, 38, False)
    assert not reset_due(1, 1, False), "the same count"
    assert not reset_due(2, 1, True), "the batch before had already lost all its CoT"
    assert not reset_due(ALL, ALL, True)
    assert previous_batch(0, 0, 10) is None
    assert previous_batch(1, 0, 10) == (0, 9) and previous_batch(1, 3, 10) == (1, 2)


def test_final_epochs_start_where_the_schedule_removes_every_cot():
    method = icot()  # 10 batches a epoch: the count at an epoch's last batch is 10e + 9
    assert [epoch_is_final(e, 10, 25, method, None) for e in range(4)] == [False, False, True, True]  # 29 >= 25
    assert epoch_is_final(1, 10, 1000, method, last_epoch=1), "none removes it all: the last epoch counts"
    assert not epoch_is_final(0, 10, 1000, method, last_epoch=1)
    threshold = icot(icot_remove_all_beyond=15)  # 19 >= 15 at epoch 1's end: everything goes
    assert [epoch_is_final(e, 10, 1000, threshold, None) for e in range(3)] == [False, True, True]


def test_bad_icot_settings():
    with pytest.raises(ValueError, match="icot_remove_per_epoch must be > 0"):
        icot(icot_remove_per_epoch=0)
    with pytest.raises(ValueError, match="icot_remove_all_beyond"):
        icot(icot_remove_all_beyond=-1)
    with pytest.raises(ValueError, match="icot_smoothing"):
        icot(icot_smoothing=-1.0)
    assert icot(icot_smoothing=math.inf).icot_smoothing == math.inf
