"""align_thoughts moves tokens so thoughts share columns, without losing or reordering any."""

import pytest
import torch

from coconut.engine.alignment import LatentInputError, align_thoughts, right_align
from tests.helpers import END, LATENT, PAD, START, pad_batch, ragged_batch


def aligned(ids, mask):
    return align_thoughts(ids, mask, LATENT, START, END, PAD)


def test_thoughts_start_in_one_column_and_tokens_keep_their_order():
    _, (ids, mask, _) = ragged_batch(4, batch=6, side="right")
    layout = aligned(ids, mask)
    for row in range(ids.shape[0]):
        n = int(layout.num_thoughts[row])
        if n:
            cols = layout.is_thought[row].nonzero().flatten().tolist()
            assert cols == list(range(layout.first_thought, layout.first_thought + n))
        # every original token is found at its new column, in the same order
        assert torch.equal(layout.input_ids[row, layout.column[row]], ids[row])
        assert torch.equal(layout.attention_mask[row, layout.column[row]], mask[row])
        assert bool((layout.column[row].diff() > 0).all())
        # real tokens get positions 0, 1, 2, ... whatever holes lie between them
        real = layout.attention_mask[row].bool()
        assert layout.position_ids[row][real].tolist() == list(range(int(mask[row].sum())))
    assert not layout.is_identity


def test_right_aligned_prompts_end_in_the_last_column():
    _, (ids, mask, _) = ragged_batch(5, batch=6, side="right")
    ids, mask = right_align(ids, mask, PAD)
    assert bool(mask[:, -1].all())
    layout = aligned(ids, mask)
    assert bool(layout.attention_mask[:, -1].all())


def test_a_pre_aligned_batch_is_not_moved():
    tokens = [[5, 6, START, LATENT, LATENT, END, 7], [8, 9, START, LATENT, LATENT, END, 10]]
    ids, mask, _ = pad_batch([(t, t) for t in tokens], "right")
    layout = aligned(ids, mask)
    assert layout.is_identity and layout.first_thought == 3 and layout.thought_columns == 2
    assert torch.equal(layout.input_ids, ids)


def test_right_align_rolls_right_padding_to_the_front():
    ids = torch.tensor([[5, 6, PAD], [7, 8, 9]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    new_ids, new_mask = right_align(ids, mask, PAD)
    assert new_ids.tolist() == [[PAD, 5, 6], [7, 8, 9]]
    assert new_mask.tolist() == [[0, 1, 1], [1, 1, 1]]


def test_prompts_until_start_cuts_after_the_marker_and_refuses_prompts_without_one():
    from coconut.engine.alignment import prompts_until_start

    ids = torch.tensor([[PAD, 9, 10, START, LATENT, END], [11, START, LATENT, LATENT, LATENT, END]])
    mask = (ids != PAD).long()
    cut, cut_mask = prompts_until_start(ids, mask, START, PAD)
    assert cut.tolist() == [[PAD, PAD, PAD, 9, 10, START], [PAD, PAD, PAD, PAD, 11, START]]
    assert cut_mask.tolist() == [[0, 0, 0, 1, 1, 1], [0, 0, 0, 0, 1, 1]]
    with pytest.raises(LatentInputError, match="row 1: no <|start-latent|>"):
        prompts_until_start(torch.tensor([[9, START], [9, 10]]), torch.ones(2, 2, dtype=torch.long), START, PAD)
