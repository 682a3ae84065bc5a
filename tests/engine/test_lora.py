"""LoRA (peft) around the model: the latent engine's equivalences still hold; only adapters and new tokens train."""

import pytest
import torch

from tests.helpers import (END, LATENT, MAX_NEW, START, check_against_recompute, engine_for, pad_batch, prompts,
                           ragged_batch, tiny_model)

peft = pytest.importorskip("peft")


def lora_model(arch):
    from coconut.config import ModelConfig
    from coconut.engine.lora import apply_lora

    model = apply_lora(tiny_model(arch, seed=6), ModelConfig(lora_rank=4, lora_dropout=0.0), [START, LATENT, END])
    with torch.no_grad():  # adapters start as the identity (B = 0); make them matter
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.2)
    return model


def trainable_grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad and p.grad is not None}


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_lora_engine_matches_the_recompute(arch):
    model = lora_model(arch)
    engine = engine_for(model)
    examples, batch = ragged_batch(2, batch=5, side="left")
    _, got = check_against_recompute(engine, model, examples, batch, grads_of=trainable_grads)
    assert any("lora_A" in n for n in got), "the adapters get gradients"


def test_only_adapters_and_new_token_rows_train():
    model = lora_model("llama")
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n or "token_adapter" in n for n in trainable), trainable
    engine = engine_for(model)
    examples, (ids, mask, labels) = ragged_batch(3, batch=4)
    engine(ids, mask, labels).loss.backward()
    delta = [p for n, p in model.named_parameters() if "token_adapter" in n and p.grad is not None]
    assert delta and all(float(p.grad.abs().sum()) > 0 for p in delta), "the new markers' embeddings learn"


def test_lora_batched_generation_equals_one_at_a_time():
    engine = engine_for(lora_model("llama"))
    batch_prompts = prompts(seed=4)
    ids, mask, _ = pad_batch([(p, p) for p in batch_prompts], "right")
    batched = engine.generate(ids, mask, max_new_tokens=MAX_NEW)
    for row, prompt in enumerate(batch_prompts):
        single = engine.generate(torch.tensor([prompt]), max_new_tokens=MAX_NEW)
        n = int(batched.num_generated[row])
        assert batched.sequences[row, :n].tolist() == single.sequences[0].tolist()


def test_merged_model_gives_the_same_logits():
    from coconut.engine.lora import is_lora, merged

    model = lora_model("gpt2")
    ids = torch.randint(5, 40, (2, 9))
    with torch.no_grad():
        before = model(input_ids=ids).logits
        plain = merged(model)
        assert not is_lora(plain)
        assert torch.allclose(plain(input_ids=ids).logits, before, atol=1e-5)
