"""Batches of similar length: the same samples in another order, each group narrow in length, the partial group
last, the order a function of the rng alone."""

import random
from types import SimpleNamespace

import pytest

from coconut.data.length_batches import grouped_by_length, sample_length


def shuffled_lengths(n, seed=0):
    rng = random.Random(seed)
    return [rng.randint(5, 60) for _ in range(n)]


def spread(order, group):
    """The mean over groups of (longest - shortest): what padding a batch of the group computes."""
    groups = [order[i:i + group] for i in range(0, len(order), group)]
    return sum(max(g) - min(g) for g in groups) / len(groups)


def test_every_sample_is_kept_once_and_the_groups_are_narrow():
    lengths = shuffled_lengths(1000)
    order = grouped_by_length(lengths, 10, random.Random(1), length=lambda x: x, pool_batches=20)
    assert sorted(order) == sorted(lengths), "a reordering: nothing dropped, nothing repeated"
    assert spread(order, 10) < spread(lengths, 10) / 4
    # Pools of 200 sorted, groups shuffled: the first groups are not simply the shortest of the epoch.
    firsts = [order[i] for i in range(0, 100, 10)]
    assert max(firsts) > 20


def test_a_partial_group_stays_last_so_the_full_batches_stay_full():
    lengths = shuffled_lengths(105)
    order = grouped_by_length(lengths, 10, random.Random(0), length=lambda x: x, pool_batches=3)
    assert sorted(order) == sorted(lengths)
    # 105 = 3 pools of 30, then 15: the last pool's sorted 15 give one full group and the partial one of 5.
    last_pool = sorted(lengths[90:])
    assert order[-5:] == last_pool[10:], "the partial group: the last pool's 5 longest, at the end"
    assert grouped_by_length(lengths[:5], 10, random.Random(0), length=lambda x: x) == sorted(lengths[:5])


def test_the_order_is_a_function_of_the_rng():
    lengths = shuffled_lengths(300)

    def order(seed):
        return grouped_by_length(lengths, 8, random.Random(seed), length=lambda x: x, pool_batches=4)

    assert order(3) == order(3) and order(3) != order(4)


def test_ties_keep_the_shuffled_order():
    items = [(length, i) for i, length in enumerate([3, 1, 3, 2, 1, 3])]
    order = grouped_by_length(items, 6, random.Random(0), length=lambda x: x[0])
    assert order == [(1, 1), (1, 4), (2, 3), (3, 0), (3, 2), (3, 5)]


def test_a_sample_costs_its_ids_and_its_teachers():
    assert sample_length(SimpleNamespace(input_ids=[1, 2, 3], teacher_ids=None)) == 3
    assert sample_length(SimpleNamespace(input_ids=[1, 2, 3], teacher_ids=[4, 5])) == 5


def test_a_group_must_hold_a_sample():
    with pytest.raises(ValueError, match="group must be >= 1"):
        grouped_by_length([1, 2], 0, random.Random(0), length=lambda x: x)
