"""The engine's KV cache (coconut.engine.kv_cache): the values and gradients of transformers' concatenating cache,
autograd's version check kept for everything but the cache's own prefix views, what it relies on from transformers,
and a latent training step that keeps no copy of the cache per thought."""

import pytest
import torch
from transformers import Cache, DynamicCache
from transformers.cache_utils import CacheLayerMixin, DynamicLayer

from coconut.bench.memory import PeakTensorMemory
from coconut.engine.kv_cache import RoomCache, RoomLayer, exact_prefix_reads
from coconut.engine.models import tiny_causal_lm
from tests.helpers import (END, EOS, LATENT, PAD, START, VOCAB, check_against_recompute, engine_for, ragged_batch,
                           tiny_model)

CHUNKS = (3, 1, 1, 2)  # a prefix, two thought columns, a suffix: with room 5 the suffix outgrows the room


def _config():
    return tiny_model("gpt2").config


def _run(cache, chunks):
    """Feed `chunks` of keys and values to layer 0 and a loss that reads every returned view."""
    loss = 0.0
    for i, (k, v) in enumerate(chunks):
        keys, values = cache.update(k, v, 0)
        loss = loss + (keys * (i + 1)).sin().sum() + (values * keys).sum()
    return loss, keys, values


def _chunks(requires_grad):
    g = torch.Generator().manual_seed(0)
    out = []
    for n in CHUNKS:
        k, v = torch.randn(2, 3, n, 4, generator=g), torch.randn(2, 3, n, 4, generator=g)
        out.append((k.requires_grad_(requires_grad), v.requires_grad_(requires_grad)))
    return out


def _leaves(chunks):
    return [t for pair in chunks for t in pair]


@pytest.mark.parametrize("room", [5, 7])
def test_room_cache_gives_the_values_and_gradients_of_transformers_cache(room):
    chunks = _chunks(True)
    want_loss, want_k, want_v = _run(DynamicCache(config=_config()), chunks)
    want_grads = torch.autograd.grad(want_loss, _leaves(chunks))
    cache = RoomCache(_config(), room)
    with exact_prefix_reads(cache):
        got_loss, got_k, got_v = _run(cache, chunks)
    got_grads = torch.autograd.grad(got_loss, _leaves(chunks))
    assert torch.equal(got_k, want_k) and torch.equal(got_v, want_v)
    assert torch.allclose(got_loss, want_loss, rtol=1e-6)
    for got, want in zip(got_grads, want_grads):
        assert torch.allclose(got, want, atol=1e-6)
    assert cache.get_seq_length() == sum(CHUNKS)
    assert isinstance(got_k.grad_fn, torch.autograd.graph.Node)  # plain autograd nodes, no custom function
    assert "Backward" in type(got_k.grad_fn).__name__ and "Filled" not in type(got_k.grad_fn).__name__


def test_without_the_exemption_autograd_refuses_the_prefix_views():
    """Why `exact_prefix_reads` exists: a later write moves the room's version past what earlier reads saved."""
    chunks = _chunks(True)
    loss, _, _ = _run(RoomCache(_config(), 7), chunks)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_every_other_saved_tensor_keeps_the_version_check():
    cache = RoomCache(_config(), 4)
    x = torch.randn(3, requires_grad=True)
    with exact_prefix_reads(cache):
        cache.update(torch.randn(1, 1, 2, 2, requires_grad=True), torch.randn(1, 1, 2, 2), 0)
        a = x.exp()
        b = a.sin()  # saves a
        a.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        b.sum().backward()


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_the_callers_saved_tensor_hooks_save_what_the_passes_save(arch):
    """Under the caller's hooks (offloading to CPU, say) every tensor the latent passes save goes through them,
    the cache's prefix views included, and the gradients are the ones recorded without hooks."""
    from coconut.engine.kv_cache import callers_saved_tensor_hooks

    model = tiny_model(arch)
    engine = engine_for(model)
    _, (ids, mask, labels) = ragged_batch(seed=3)
    model.zero_grad()
    engine(ids, mask, labels).loss.backward()
    want = {name: p.grad.clone() for name, p in model.named_parameters()}
    packed = []

    def pack(tensor):
        packed.append((tuple(tensor.shape), tensor._base is not None))
        return tensor.clone()  # a copy, as offloading makes: the original's later writes cannot reach it

    model.zero_grad()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda saved: saved):
        assert callers_saved_tensor_hooks()[0] is pack
        loss = engine(ids, mask, labels).loss
    loss.backward()
    heads = model.config.num_key_value_heads if arch == "llama" else model.config.num_attention_heads
    room_views = [shape for shape, is_view in packed
                  if is_view and len(shape) == 4 and shape[:2] == (ids.shape[0], heads) and shape[2] > 1]
    assert room_views, "the thought passes' reads of the cache went past the caller's hooks"
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.grad, want[name], atol=1e-6, rtol=1e-5, msg=name)


def test_a_crop_while_recording_moves_to_fresh_room():
    """Columns a backward pass may still read are never overwritten: the same gradients as transformers' cache."""
    results = []
    for cache in (DynamicCache(config=_config()), RoomCache(_config(), 8)):
        chunks = _chunks(True)
        with exact_prefix_reads(cache):
            loss, _, _ = _run(cache, chunks)
            cache.crop(-2)
            k = torch.ones(2, 3, 2, 4, requires_grad=True)
            keys, values = cache.update(k, 2 * k, 0)
            loss = loss + (keys.cos() * values).sum()
        results.append((keys.detach(), torch.autograd.grad(loss, _leaves(chunks) + [k])))
    (want_keys, want), (got_keys, got) = results
    assert torch.equal(got_keys, want_keys)
    for g, w in zip(got, want):
        assert torch.allclose(g, w, atol=1e-6)


def test_without_gradients_and_after_a_crop():
    chunks = _chunks(False)
    cache = RoomCache(_config(), 2)
    _, keys, _ = _run(cache, chunks)
    assert torch.equal(keys, torch.cat([k for k, _ in chunks], dim=-2)) and not keys.requires_grad
    cache.crop(-2)
    assert cache.get_seq_length() == sum(CHUNKS) - 2
    extra = torch.ones(2, 3, 1, 4)
    keys, _ = cache.update(extra, extra, 0)
    assert torch.equal(keys, torch.cat([k for k, _ in chunks] + [extra], dim=-2)[..., [0, 1, 2, 3, 4, 7], :])


# -- what the cache relies on from transformers: a release that changes it fails here ---------------------------

def test_the_layer_implements_transformers_layer_interface():
    """Every abstract method of transformers' layer base is implemented (a new one would make this fail), and the
    container is transformers' own `Cache`."""
    missing = set(getattr(CacheLayerMixin, "__abstractmethods__", ())) - {
        name for name in vars(RoomLayer) if callable(getattr(RoomLayer, name))}
    assert not missing, missing
    RoomLayer(4)  # not abstract
    assert issubclass(RoomCache, Cache) and not issubclass(RoomLayer, DynamicLayer)


@pytest.mark.parametrize("arch", ["gpt2", "llama", "qwen2"])
def test_full_attention_layers_get_room_and_the_model_writes_every_column_once(arch):
    """transformers' `DynamicCache(config=...)` names the layer kinds (plain `DynamicLayer` for full attention);
    the model calls `update` once per layer and pass with (B, Hkv, columns, hd) and asks `get_mask_sizes` for
    the length the keys it gets back have."""
    model = tiny_model(arch)
    layers = model.config.num_hidden_layers
    assert [type(layer) for layer in DynamicCache(config=model.config).layers] == [DynamicLayer] * layers
    cache = RoomCache(model.config, room=6)
    assert [type(layer) for layer in cache.layers] == [RoomLayer] * layers
    calls = []
    for layer in cache.layers:
        update, sizes = layer.update, layer.get_mask_sizes
        layer.update = lambda k, v, *a, _u=update, **kw: calls.append(("update", tuple(k.shape))) or _u(k, v)
        layer.get_mask_sizes = lambda q, _s=sizes: calls.append(("sizes", q)) or _s(q)
    ids = torch.randint(1, 30, (2, 5))
    full = model(input_ids=ids).logits
    with torch.no_grad():
        first = model(input_ids=ids[:, :4], cache=cache, use_cache=True).logits
        last = model(input_ids=ids[:, 4:], cache=cache, use_cache=True).logits
    assert torch.allclose(torch.cat([first, last], dim=1), full, atol=1e-5)
    updates = [shape for kind, shape in calls if kind == "update"]
    heads = getattr(model.config, "num_key_value_heads", None) or model.config.num_attention_heads
    assert len(updates) == 2 * layers and all(s[:3] == (2, heads, 4) for s in updates[:layers])
    assert all(s[:3] == (2, heads, 1) for s in updates[layers:])
    assert ("sizes", 1) in calls and cache.get_seq_length() == 5 and cache.get_mask_sizes(1, 0) == (6, 0)


def test_a_sliding_window_layer_stays_transformers():
    model = tiny_causal_lm("qwen2", vocab_size=40, layers=2, hidden=32, heads=4, use_sliding_window=True,
                           sliding_window=4, max_window_layers=1, layer_types=["full_attention", "sliding_attention"])
    kinds = [type(layer) for layer in RoomCache(model.config, room=8).layers]
    assert kinds[0] is RoomLayer and kinds[1] is not RoomLayer and kinds[1] is not DynamicLayer



def _sliding_model():
    torch.manual_seed(5)
    return tiny_causal_lm("qwen2", vocab_size=VOCAB, layers=2, hidden=32, heads=4, kv_heads=2, intermediate=64,
                          max_positions=128, eos_id=EOS, pad_id=PAD, tie_embeddings=False, use_sliding_window=True,
                          sliding_window=4, max_window_layers=1,
                          layer_types=["full_attention", "sliding_attention"]).eval()


@pytest.mark.parametrize("seed", [5, 6])
def test_a_model_with_a_sliding_window_layer_equals_the_recompute_row_by_row(seed):
    # The sliding layer (transformers' own) drops keys older than its window of 4 while the room layer keeps all:
    # the thoughts see exactly what the whole sequence's sliding mask lets them see.
    model = _sliding_model()
    examples, batch = ragged_batch(seed, batch=1)
    assert sum(t == LATENT for t in examples[0][0]) > 0
    check_against_recompute(engine_for(model), model, examples, batch)


# -- memory ------------------------------------------------------------------------------------------------------

def _kept_bytes(step) -> int:
    """Bytes of the tensors a forward pass leaves alive for its backward pass."""
    with PeakTensorMemory() as memory:
        loss = step()
    kept = memory.current_bytes
    loss.backward()
    return kept


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


# transformers' DynamicCache (and SDPA for every pass) kept 1.40x, 2.22x and 1.70x a plain step at 16 thoughts here,
# and 3.8x a plain token's bytes per extra thought with grouped-query attention.
@pytest.mark.parametrize("arch, kv_heads, limit", [("gpt2", None, 1.05), ("llama", 4, 1.05), ("llama", 2, 1.15),
                                                   ("qwen2", 2, 1.15)])
def test_a_latent_step_keeps_no_copy_of_the_cache_per_thought(arch, kv_heads, limit):
    """A latent forward keeps about what a plain forward of the same length keeps, and each thought adds what a
    token adds. GPT-2 trains with attention dropout, where SDPA on a CPU would copy the keys; with grouped-query
    heads the suffix pass (several columns, under a mask) repeats the keys once, whatever the number of thoughts."""
    torch.manual_seed(0)
    extra = {"kv_heads": kv_heads} if kv_heads else {"dropout": 0.1}
    model = tiny_causal_lm(arch, vocab_size=40, layers=2, hidden=32, heads=4, intermediate=64, max_positions=128,
                           eos_id=EOS, **extra).train()
    engine = engine_for(model)
    kept = {}
    for thoughts in (4, 16):
        ids, plain_ids, labels = _batch(thoughts)
        mask = torch.ones_like(ids)
        kept[thoughts] = (_kept_bytes(lambda: engine(ids, mask, labels).loss),
                          _kept_bytes(lambda: model(input_ids=plain_ids, attention_mask=mask, labels=labels).loss))
    (latent4, plain4), (latent16, plain16) = kept[4], kept[16]
    assert latent16 <= limit * plain16, (latent16, plain16)
    assert latent16 - latent4 <= 1.25 * (plain16 - plain4), "bytes per thought against bytes per plain token"


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_under_bf16_autocast_the_room_cache_trains_as_transformers_cache(arch, monkeypatch):
    """bf16 rooms (the keys autocast makes) give the loss and gradients of transformers' concatenating cache."""
    from coconut.engine import reasoner
    from tests.helpers import ragged_batch

    model = tiny_model(arch)
    engine = engine_for(model)
    _, (ids, mask, labels) = ragged_batch(3, batch=4, side="left")
    results = []
    for concatenating in (False, True):
        if concatenating:
            monkeypatch.setattr(reasoner, "RoomCache", lambda config, room: DynamicCache(config=config))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = engine(ids, mask, labels).loss
        loss.backward()
        results.append((loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}))
        model.zero_grad(set_to_none=True)
    (ours, our_grads), (theirs, their_grads) = results
    assert torch.equal(ours, theirs)
    for name, grad in their_grads.items():
        assert torch.equal(our_grads[name], grad), name
