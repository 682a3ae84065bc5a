"""Models with sliding-window layers in batches the engine lines up (masked columns inside rows): the window is
counted in positions (coconut.engine.window_masks), so training, Jacobi thoughts and generation equal the model
on each row alone, for models mixing full and sliding layers (one mask per kind: Qwen2, Gemma 3, Gemma 2 with
its soft-capped eager attention) and one where every layer slides (one mask: Mistral), under SDPA and eager
attention."""

import pytest
import torch
from transformers import (Gemma2Config, Gemma2ForCausalLM, Gemma3ForCausalLM, Gemma3TextConfig, MistralConfig,
                          MistralForCausalLM)

import coconut.engine.reasoner
from coconut.engine.models import tiny_causal_lm
from tests.helpers import (EOS, LATENT, MAX_NEW, PAD, VOCAB, check_against_recompute, engine_for, pad_batch, prompts,
                           ragged_batch, reference_greedy)

WINDOW = 4  # shorter than the rows, so the window decides what a token sees


def _mixed(attention="sdpa"):
    torch.manual_seed(5)
    model = tiny_causal_lm("qwen2", vocab_size=VOCAB, layers=2, hidden=32, heads=4, kv_heads=2, intermediate=64,
                           max_positions=128, eos_id=EOS, pad_id=PAD, tie_embeddings=False, use_sliding_window=True,
                           sliding_window=WINDOW, max_window_layers=1, layer_types=["full_attention", "sliding_attention"])
    model.config._attn_implementation = attention
    return model.eval()


def _every_layer_slides(attention="sdpa"):
    torch.manual_seed(6)
    config = MistralConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, sliding_window=WINDOW,
                           max_position_embeddings=128, eos_token_id=EOS, pad_token_id=PAD, bos_token_id=EOS)
    model = MistralForCausalLM(config)
    model.config._attn_implementation = attention
    return model.eval()


def _gemma(config_class, model_class, layers):
    def build(attention="sdpa"):
        torch.manual_seed(7)
        config = config_class(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=layers,
                              num_attention_heads=4, num_key_value_heads=2, head_dim=8, sliding_window=WINDOW,
                              max_position_embeddings=128, eos_token_id=EOS, pad_token_id=PAD, bos_token_id=EOS)
        model = model_class(config)
        model.config._attn_implementation = attention
        assert set(config.layer_types) == {"full_attention", "sliding_attention"}
        return model.eval()
    return build


MODELS = {"mixed": _mixed, "every layer slides": _every_layer_slides,
          "gemma3": _gemma(Gemma3TextConfig, Gemma3ForCausalLM, layers=6),  # five sliding layers, then a full one
          "gemma2": _gemma(Gemma2Config, Gemma2ForCausalLM, layers=2)}
# Gemma 2 soft-caps its attention scores, which SDPA cannot: eager only.
TRAINING_CASES = [(kind, attention) for kind in MODELS for attention in ("sdpa", "eager")
                  if (kind, attention) != ("gemma2", "sdpa")]


def _holes(mask: torch.Tensor) -> bool:
    attended = mask.bool()
    inside = (attended.long().cumsum(1) > 0) & (attended.flip(1).long().cumsum(1).flip(1) > 0)
    return bool((inside & ~attended).any())


@pytest.mark.parametrize("kind,attention", TRAINING_CASES)
@pytest.mark.parametrize("seed,side", [(5, "right"), (6, "left")])
def test_a_lined_up_batch_trains_as_each_row_alone(kind, attention, seed, side):
    model = MODELS[kind](attention)
    engine = engine_for(model)
    examples, batch = ragged_batch(seed, batch=5, side=side)
    layout = coconut.engine.reasoner.align_thoughts(batch[0], batch[1], LATENT, engine.start_id, engine.end_id, PAD)
    assert _holes(layout.attention_mask), "the test needs masked columns inside rows"
    check_against_recompute(engine, model, examples, batch)


def test_without_counting_in_positions_the_same_batch_differs(monkeypatch):
    """What the test above guards: with the windows counted in columns the lined-up batch is another computation."""
    model = _mixed()
    examples, (ids, mask, labels) = ragged_batch(5, batch=5)
    want = engine_for(model)(ids, mask, labels).loss
    monkeypatch.setattr(coconut.engine.reasoner, "windows_by_position", lambda cache, mask, config: False)
    got = engine_for(model)(ids, mask, labels).loss
    assert not torch.allclose(got, want, atol=1e-4)


@pytest.mark.parametrize("kind", MODELS)
def test_jacobi_thoughts_count_the_window_in_positions(kind):
    """Enough Jacobi iterations equal the sequential engine, on a lined-up batch too."""
    model = MODELS[kind]("eager" if kind == "gemma2" else "sdpa")
    _, (ids, mask, labels) = ragged_batch(6, batch=5)
    sequential = engine_for(model)(ids, mask, labels)
    jacobi = engine_for(model, jacobi_iterations=4)(ids, mask, labels)
    torch.testing.assert_close(jacobi.loss, sequential.loss, atol=1e-5, rtol=0)
    real = mask.bool()
    torch.testing.assert_close(jacobi.logits[real], sequential.logits[real], atol=1e-4, rtol=0)


@pytest.mark.parametrize("kind", MODELS)
def test_batched_generation_equals_each_prompt_alone(kind, monkeypatch):
    model = MODELS[kind]("eager" if kind == "gemma2" else "sdpa")
    engine = engine_for(model)
    batch_prompts = prompts(seed=12)
    ids, mask, _ = pad_batch([(p, p) for p in batch_prompts], "right")
    switched = []
    real = coconut.engine.reasoner.windows_by_position
    monkeypatch.setattr(coconut.engine.reasoner, "windows_by_position",
                        lambda *args: switched.append(real(*args)) or switched[-1])
    batched = engine.generate(ids, mask, max_new_tokens=MAX_NEW)
    assert switched == [True], "the lined-up prompts have masked columns inside rows"
    for row, prompt in enumerate(batch_prompts):
        n = int(batched.num_generated[row])
        want = reference_greedy(model, prompt, MAX_NEW)
        assert batched.sequences[row, :n].tolist() == want[:n], f"row {row}"
        assert n == len(want) or want[n - 1] == EOS


def test_a_crop_keeps_the_recorded_positions_in_step_with_the_cache():
    """transformers' `crop` on a cache counting windows in positions: the next call's masks read the positions of
    the columns that are left, so its hidden states are those of the model over the shortened text."""
    from coconut.engine.kv_cache import RoomCache

    model = _mixed()
    engine = engine_for(model)
    _, (ids, mask, _) = ragged_batch(5, batch=4)
    layout = coconut.engine.reasoner.align_thoughts(ids, mask, LATENT, engine.start_id, engine.end_id, PAD)
    embeds, mask, pos = engine.embed(layout.input_ids), layout.attention_mask, layout.position_ids
    width = layout.width
    with torch.no_grad():
        want = RoomCache(model.config, room=width)
        want.count_windows_in_positions()
        expected = engine.cached_pass(embeds[:, : width - 2], mask[:, : width - 2], pos[:, : width - 2], want)
        cache = RoomCache(model.config, room=width)
        cache.count_windows_in_positions()
        engine.cached_pass(embeds[:, : width - 3], mask[:, : width - 3], pos[:, : width - 3], cache)
        cache.crop(-2)
        assert cache.position_windows.positions.shape[1] == cache.get_seq_length() == width - 5
        got = engine.cached_pass(embeds[:, width - 5 : width - 2], mask[:, : width - 2], pos[:, width - 5 : width - 2],
                                 cache)
    real = mask[:, width - 5 : width - 2].bool()
    torch.testing.assert_close(got[real], expected[:, width - 5 :][real], atol=1e-5, rtol=0)


def test_a_cache_that_cannot_count_in_positions_is_refused():
    from transformers import DynamicCache

    model = _mixed()
    engine = engine_for(model)
    _, (ids, mask, _) = ragged_batch(5, batch=4)
    with pytest.raises(ValueError, match="row 0: .* a DynamicCache cannot count the window in positions"):
        engine.run_passes(ids, mask, cache=DynamicCache(config=model.config))


def test_an_attention_that_takes_no_mask_is_refused():
    model = _mixed()
    model.config._attn_implementation_internal = "flash_attention_2"  # as loaded with it (not installed here)
    _, (ids, mask, labels) = ragged_batch(5, batch=4)
    with pytest.raises(ValueError, match="attention implementation 'flash_attention_2', which takes no ready-made"):
        engine_for(model)(ids, mask, labels)


def test_compiled_passes_take_the_ready_made_masks(aot_eager):
    """`latent.compile` on a lined-up batch: the masks go into the compiled call as arguments, no graph break."""
    model = _mixed()
    examples, batch = ragged_batch(5, batch=5)
    engine = engine_for(model, compile_mode="default")
    check_against_recompute(engine, model, examples, batch)
    assert engine._compiled is not None and aot_eager
