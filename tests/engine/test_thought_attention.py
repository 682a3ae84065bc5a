"""The single-column attention kernel of thought passes (coconut.engine.thought_attention) against the attention
written out plainly (softmax of the scaled scores, dropout, the values), with dropout on, where the kernel runs:
values and gradients equal under one seed, for plain and grouped-query heads, with boolean and additive masks. A
kernel that scaled its softmax, dropped other entries or read the wrong heads would fail here."""

import pytest
import torch

from coconut.engine.thought_attention import single_query_attention


class Module(torch.nn.Module):
    is_causal = True


def reference(query, key, value, mask, dropout, scaling):
    """(B, q, H, hd): each head attends to its own key/value head (grouped heads repeat them)."""
    heads, kv_heads = query.shape[1], key.shape[1]
    key = key.repeat_interleave(heads // kv_heads, dim=1)
    value = value.repeat_interleave(heads // kv_heads, dim=1)
    scores = (query * scaling) @ key.transpose(-1, -2)  # (B, H, 1, K)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
    probs = torch.softmax(scores, dim=-1)
    probs = torch.nn.functional.dropout(probs, p=dropout, training=True)
    return (probs @ value).transpose(1, 2)


@pytest.mark.parametrize("heads,kv_heads", [(4, 4), (4, 2), (6, 1)])
@pytest.mark.parametrize("mask_kind", [None, "bool", "additive"])
def test_values_and_gradients_equal_the_plain_attention_with_dropout(heads, kv_heads, mask_kind):
    torch.manual_seed(0)
    batch, length, dim, p = 3, 7, 8, 0.3
    query = torch.randn(batch, heads, 1, dim, requires_grad=True)
    key = torch.randn(batch, kv_heads, length, dim, requires_grad=True)
    value = torch.randn(batch, kv_heads, length, dim, requires_grad=True)
    attended = torch.rand(batch, 1, 1, length) > 0.3
    attended[..., 0] = True  # every row attends somewhere
    mask = {None: None, "bool": attended,
            "additive": torch.where(attended, 0.0, torch.finfo(torch.float32).min)}[mask_kind]
    weights = torch.randn(batch, 1, heads, dim)  # a loss that weighs every output differently

    torch.manual_seed(1)
    ours, _ = single_query_attention(Module(), query, key, value, mask, dropout=p, scaling=dim**-0.5)
    grads = torch.autograd.grad((ours * weights).sum(), (query, key, value))
    torch.manual_seed(1)
    theirs = reference(query, key, value, mask, p, dim**-0.5)
    expected = torch.autograd.grad((theirs * weights).sum(), (query, key, value))

    assert not torch.equal(ours, reference(query, key, value, mask, 0.0, dim**-0.5).detach()), "dropout acted"
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=1e-5)
    for got, want in zip(grads, expected):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)


def test_without_dropout_or_with_several_columns_sdpa_answers():
    torch.manual_seed(0)
    query, key, value = torch.randn(2, 2, 3, 4), torch.randn(2, 2, 5, 4), torch.randn(2, 2, 5, 4)
    out, _ = single_query_attention(Module(), query, key, value, None, dropout=0.0, scaling=0.5)
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    want, _ = sdpa_attention_forward(Module(), query, key, value, None, dropout=0.0, scaling=0.5)
    torch.testing.assert_close(out, want)
