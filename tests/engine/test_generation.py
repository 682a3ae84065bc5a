"""Batched cached generation equals one-at-a-time generation and a no-cache reference."""

import pytest
import torch

from tests.helpers import EOS, LATENT, MAX_NEW, PAD, engine_for, eos_prone_model, pad_batch, prompts, reference_greedy


@pytest.mark.parametrize("arch", ["gpt2", "llama", "qwen2"])
@pytest.mark.parametrize("side", ["left", "right"])
def test_batched_equals_single_equals_reference(arch, side):
    model = eos_prone_model(arch)
    engine = engine_for(model)
    batch_prompts = prompts(seed=11)
    ids, mask, _ = pad_batch([(p, p) for p in batch_prompts], side)
    batched = engine.generate(ids, mask, max_new_tokens=MAX_NEW)

    lengths = set()
    for row, prompt in enumerate(batch_prompts):
        single = engine.generate(torch.tensor([prompt]), max_new_tokens=MAX_NEW)
        n = int(batched.num_generated[row])
        lengths.add(n)
        tokens = batched.sequences[row, :n].tolist()
        assert tokens == single.sequences[0].tolist() == reference_greedy(model, prompt, MAX_NEW)
        assert bool((batched.sequences[row, n:] == PAD).all()), "padding after EOS"
        assert int(single.num_generated[0]) == n
        assert int(batched.num_thoughts[row]) == prompt.count(LATENT)
        assert int(batched.num_forward_passes[row]) == int(single.num_forward_passes[0])
    assert len(lengths) > 1, "the test needs rows that stop at different lengths"


@pytest.mark.parametrize("jacobi", [None, 2])
def test_forward_pass_count_is_the_number_of_decoder_calls(jacobi):
    model = eos_prone_model("gpt2")
    engine = engine_for(model)
    engine.jacobi_iterations = jacobi
    calls = []
    hook = model.get_decoder().register_forward_hook(lambda *_: calls.append(1))
    try:
        for prompt in prompts(seed=12, count=4):
            calls.clear()
            out = engine.generate(torch.tensor([prompt]), max_new_tokens=MAX_NEW)
            assert int(out.num_forward_passes[0]) == len(calls)
            n = int(out.num_generated[0])
            ended = n > 0 and int(out.sequences[0, n - 1]) == engine.eos_id  # EOS is not counted, as the release
            assert int(out.language_tokens(engine.eos_id)[0]) == n - ended
            assert int(out.paper_token_count(engine.eos_id)[0]) == n - ended + prompt.count(LATENT)
    finally:
        hook.remove()


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_zero_thoughts_matches_hugging_face_greedy(arch):
    model = eos_prone_model(arch)
    engine = engine_for(model)
    batch_prompts = prompts(seed=13, max_thoughts=0)
    ids, mask, _ = pad_batch([(p, p) for p in batch_prompts], "left")
    ours = engine.generate(ids, mask, max_new_tokens=MAX_NEW)
    theirs = model.generate(
        input_ids=ids, attention_mask=mask, max_new_tokens=MAX_NEW, do_sample=False,
        eos_token_id=EOS, pad_token_id=PAD, suppress_tokens=[LATENT],
    )[:, ids.shape[1]:]
    width = min(theirs.shape[1], ours.sequences.shape[1])
    assert torch.equal(ours.sequences[:, :width], theirs[:, :width])
    assert bool((theirs[:, width:] == PAD).all()) and bool((ours.sequences[:, width:] == PAD).all())


def test_the_paper_token_count_of_a_no_cot_answer_leaves_out_the_eos():
    from coconut.engine.generation import GenerateOutput

    eos, pad = 9, 0
    # "### True <eos>" (No-CoT), "### <eos>" after 2 thoughts, and a row cut at max_new_tokens without EOS.
    out = GenerateOutput(sequences=torch.tensor([[5, 6, eos], [5, eos, pad], [5, 6, 7]]),
                         num_generated=torch.tensor([3, 2, 3]), num_thoughts=torch.tensor([0, 2, 0]),
                         num_forward_passes=torch.tensor([4, 5, 4]))
    assert out.language_tokens(eos).tolist() == [2, 1, 3]
    assert out.paper_token_count(eos).tolist() == [2, 3, 3]
