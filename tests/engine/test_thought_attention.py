"""The single-column attention kernel of thought passes (coconut.engine.thought_attention) against the attention
written out plainly (softmax of the scaled scores, dropout, the values), with dropout on, where the kernel runs:
values and gradients equal under one seed, for plain and grouped-query heads, with boolean and additive masks. A
kernel that scaled its softmax, dropped other entries or read the wrong heads would fail here. Without dropout it
equals SDPA, and the engine switches to it only while training an SDPA model."""

import pytest
import torch
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from coconut.engine.thought_attention import single_query_attention, thought_attention
from tests.helpers import tiny_model


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


@pytest.mark.parametrize("kv_heads, mask_kind", [(4, "bool"), (2, "bool"), (2, "float"), (4, None)])
def test_single_query_attention_equals_sdpa(kv_heads, mask_kind):
    g = torch.Generator().manual_seed(1)
    q = torch.randn(3, 4, 1, 8, generator=g, requires_grad=True)
    k = torch.randn(3, kv_heads, 6, 8, generator=g, requires_grad=True)
    v = torch.randn(3, kv_heads, 6, 8, generator=g, requires_grad=True)
    keep = torch.ones(3, 1, 1, 6, dtype=torch.bool)
    keep[0, ..., :2] = False  # a padded row
    mask = {None: None, "bool": keep, "float": torch.zeros(3, 1, 1, 6).masked_fill(~keep, -1e30)}[mask_kind]
    module = torch.nn.Module()
    module.num_key_value_groups = 4 // kv_heads
    outs = [f(module, q, k, v, mask, scaling=0.3)[0] for f in (single_query_attention, sdpa_attention_forward)]
    grads = [torch.autograd.grad((o * torch.arange(o.numel()).view_as(o)).sum(), (q, k, v)) for o in outs]
    assert outs[0].shape == outs[1].shape == (3, 1, 4, 8)
    assert torch.allclose(outs[0], outs[1], atol=1e-6)
    for got, want in zip(*grads):
        assert torch.allclose(got, want, atol=1e-5)


def test_thought_attention_switches_sdpa_models_only_while_training():
    model = tiny_model("llama")
    with thought_attention(model.config):
        assert model.config._attn_implementation == "coconut_single_query_sdpa"
    assert model.config._attn_implementation == "sdpa"
    with torch.no_grad(), thought_attention(model.config):
        assert model.config._attn_implementation == "sdpa"
    model.config._attn_implementation = "eager"
    with thought_attention(model.config):
        assert model.config._attn_implementation == "eager"


def test_thought_attention_gives_every_sub_config_back_its_own():
    from transformers import LlavaConfig

    config = LlavaConfig()
    config._attn_implementation = "sdpa"
    config.vision_config._attn_implementation = "eager"
    with thought_attention(config):
        assert config.text_config._attn_implementation == "coconut_single_query_sdpa"
    assert (config._attn_implementation, config.text_config._attn_implementation,
            config.vision_config._attn_implementation) == ("sdpa", "sdpa", "eager")
