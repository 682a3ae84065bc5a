"""Bad inputs get a clear error that says what is wrong."""

import pytest
import torch

from coconut import LatentInputError, LatentReasoner
from tests.helpers import END, EOS, LATENT, PAD, START, tiny_model


@pytest.fixture(scope="module")
def engine():
    return LatentReasoner(tiny_model("gpt2"), latent_id=LATENT, start_id=START, end_id=END, eos_id=EOS, pad_id=PAD)


@pytest.mark.parametrize(
    "tokens, message",
    [
        ([5, 6, LATENT, END, 7], "not preceded by <|start-latent|>"),
        ([LATENT, END, 7], "not preceded by <|start-latent|>"),
        ([5, START, LATENT, 6, LATENT, END], "not one contiguous block"),
        ([5, START, LATENT, LATENT, 7], "not closed by <|end-latent|>"),
        ([5, START, LATENT, LATENT], "not closed by <|end-latent|>"),
    ],
)
def test_malformed_thought_markers(engine, tokens, message):
    ids = torch.tensor([[5, 6, 7, 8, 9, 10], tokens + [PAD] * (6 - len(tokens))])
    mask = torch.tensor([[1] * 6, [1] * len(tokens) + [0] * (6 - len(tokens))])
    with pytest.raises(LatentInputError, match="row 1") as err:
        engine(ids, mask)
    assert message in str(err.value)
    with pytest.raises(LatentInputError, match="row 1"):
        engine.generate(ids, mask, max_new_tokens=2)


def test_labelled_thoughts(engine):
    ids = torch.tensor([[5, START, LATENT, END, 7, EOS]])
    with pytest.raises(LatentInputError, match="position 2: a <\\|latent\\|> position is labelled"):
        engine(ids, labels=ids.clone())
    labels = torch.tensor([[-100, -100, -100, -100, LATENT, EOS]])
    with pytest.raises(LatentInputError, match="labelled"):
        engine(ids, labels=labels)


def test_constructor_checks_ids():
    model = tiny_model("gpt2")
    with pytest.raises(ValueError, match="three different tokens"):
        LatentReasoner(model, latent_id=3, start_id=3, end_id=4, eos_id=1)
    with pytest.raises(ValueError, match="eos_id must be a non-negative token id"):
        LatentReasoner(model, latent_id=3, start_id=2, end_id=4, eos_id=None)


def test_generate_rejects_empty_prompts(engine):
    with pytest.raises(ValueError, match="at least one attended token"):
        engine.generate(torch.tensor([[5, 6]]), torch.tensor([[0, 0]]))
    with pytest.raises(ValueError, match="max_new_tokens"):
        engine.generate(torch.tensor([[5, 6]]), max_new_tokens=0)
