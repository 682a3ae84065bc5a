"""The write-once KV cache and the single-query thought attention: same values and gradients as transformers'
own cache and SDPA, and a latent training step that keeps no copy of the cache per thought."""

import pytest
import torch
from transformers.cache_utils import DynamicLayer
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from coconut.engine.kv_cache import WriteOnceLayer
from coconut.engine.thought_attention import single_query_attention, thought_attention
from coconut.engine.models import tiny_causal_lm
from tests.helpers import END, EOS, LATENT, START, engine_for, tiny_model

CHUNKS = (3, 1, 1, 2)  # a prefix, two thought columns, a suffix: with room 5 the suffix outgrows the room


def _run(layer, chunks):
    """Feed `chunks` of keys (values = their negatives) and a loss that reads every returned view."""
    loss = 0.0
    for i, (k, v) in enumerate(chunks):
        keys, values = layer.update(k, v)
        loss = loss + (keys * (i + 1)).sin().sum() + (values * keys).sum()
    return loss, keys, values


def _chunks(requires_grad):
    g = torch.Generator().manual_seed(0)
    out = []
    for n in CHUNKS:
        k, v = torch.randn(2, 3, n, 4, generator=g), torch.randn(2, 3, n, 4, generator=g)
        out.append((k.requires_grad_(requires_grad), v.requires_grad_(requires_grad)))
    return out


@pytest.mark.parametrize("room", [5, 7])
def test_write_once_layer_gives_the_values_and_gradients_of_a_dynamic_layer(room):
    chunks = _chunks(True)
    want_loss, want_k, want_v = _run(DynamicLayer(), chunks)
    want_grads = torch.autograd.grad(want_loss, [t for pair in chunks for t in pair])
    layer = WriteOnceLayer(room)
    got_loss, got_k, got_v = _run(layer, chunks)
    got_grads = torch.autograd.grad(got_loss, [t for pair in chunks for t in pair])
    assert torch.equal(got_k, want_k) and torch.equal(got_v, want_v)
    assert torch.allclose(got_loss, want_loss, rtol=1e-6)
    for got, want in zip(got_grads, want_grads):
        assert torch.allclose(got, want, atol=1e-6)
    assert layer.get_seq_length() == sum(CHUNKS)


def test_write_once_layer_without_gradients_and_after_a_crop():
    chunks = _chunks(False)
    layer = WriteOnceLayer(2)
    _, keys, _ = _run(layer, chunks)
    assert torch.equal(keys, torch.cat([k for k, _ in chunks], dim=-2)) and not keys.requires_grad
    layer.crop(-2)
    assert layer.get_seq_length() == sum(CHUNKS) - 2
    extra = torch.ones(2, 3, 1, 4)
    keys, _ = layer.update(extra, extra)
    assert torch.equal(keys, torch.cat([k for k, _ in chunks] + [extra], dim=-2)[..., [0, 1, 2, 3, 4, 7], :])


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


def _saved_bytes(step) -> int:
    """Bytes of the distinct storages autograd keeps for the backward pass of `step()`'s result."""
    storages = {}

    def pack(t):
        storages[t.untyped_storage()._cdata] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = step()
    loss.backward()
    return sum(storages.values())


def _batch(thoughts, question=40, after=6):
    """question <bot> <latent>*n <eot> answer (labels on the answer), and a plain sequence of the same length."""
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 40, (4, question + thoughts + 2 + after), generator=gen)
    ids[:, question], ids[:, question + 1 + thoughts] = START, END
    ids[:, question + 1 : question + 1 + thoughts] = LATENT
    labels = torch.full_like(ids, -100)
    labels[:, -after:] = ids[:, -after:]
    plain = ids.clone()
    plain[:, question : question + thoughts + 2] = 7
    return ids, plain, labels


# The old engine (DynamicCache, SDPA for every pass) kept 1.40x, 2.22x and 1.70x a plain step at 16 thoughts here,
# and 3.8x a plain token's bytes per extra thought with grouped-query attention.
@pytest.mark.parametrize("arch, kv_heads, limit", [("gpt2", None, 1.05), ("llama", 4, 1.05), ("llama", 2, 1.15),
                                                   ("qwen2", 2, 1.15)])
def test_a_latent_step_keeps_no_copy_of_the_cache_per_thought(arch, kv_heads, limit):
    """Autograd keeps about what a plain step of the same length keeps, and each thought adds what a token adds.
    GPT-2 trains with attention dropout, where SDPA on a CPU would copy the keys; with grouped-query heads the
    suffix pass (several columns, under a mask) repeats the keys once, whatever the number of thoughts."""
    torch.manual_seed(0)
    extra = {"kv_heads": kv_heads} if kv_heads else {"dropout": 0.1}
    model = tiny_causal_lm(arch, vocab_size=40, layers=2, hidden=32, heads=4, intermediate=64, max_positions=128,
                           eos_id=EOS, **extra).train()
    engine = engine_for(model)
    saved = {}
    for thoughts in (4, 16):
        ids, plain_ids, labels = _batch(thoughts)
        mask = torch.ones_like(ids)
        saved[thoughts] = (_saved_bytes(lambda: engine(ids, mask, labels).loss),
                           _saved_bytes(lambda: model(input_ids=plain_ids, attention_mask=mask, labels=labels).loss))
    (latent4, plain4), (latent16, plain16) = saved[4], saved[16]
    assert latent16 <= limit * plain16, (latent16, plain16)
    assert latent16 - latent4 <= 1.25 * (plain16 - plain4), "bytes per thought against bytes per plain token"


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_under_bf16_autocast_the_write_once_cache_trains_as_transformers_cache(arch, monkeypatch):
    """bf16 rooms (the keys autocast makes) give the loss and gradients of transformers' concatenating cache."""
    from transformers import DynamicCache

    from coconut.engine import reasoner
    from tests.helpers import ragged_batch

    model = tiny_model(arch, seed=3)
    engine = engine_for(model)
    _, (ids, mask, labels) = ragged_batch(3, batch=4, side="left")
    results = []
    for concatenating in (False, True):
        if concatenating:
            monkeypatch.setattr(reasoner, "write_once_cache", lambda config, room: DynamicCache(config=config))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = engine(ids, mask, labels).loss
        loss.backward()
        results.append((loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}))
        model.zero_grad(set_to_none=True)
    (ours, our_grads), (theirs, their_grads) = results
    assert torch.equal(ours, theirs)
    for name, grad in their_grads.items():
        assert torch.equal(our_grads[name], grad), name
