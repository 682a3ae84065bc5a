"""Latent special tokens: added to a tokenizer and a model, found again after a save and reload."""

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from coconut import LatentReasoner, add_latent_tokens
from coconut.engine.special_tokens import END_LATENT, LATENT, PAUSE, START_LATENT
from tests.helpers import tiny_model


def word_tokenizer():
    words = ["<pad>", "<eos>", "tom", "is", "a", "wumpus", "?", "="]
    core = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<pad>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<eos>", pad_token="<pad>")


def test_added_tokens_survive_save_and_reload(tmp_path):
    tokenizer = word_tokenizer()
    model = tiny_model("gpt2", vocab_size=8)
    ids = add_latent_tokens(tokenizer, model, init_token="wumpus", pause=True)
    assert ids == [8, 9, 10, 11]
    table = model.get_input_embeddings().weight
    assert table.shape[0] == 12
    for idx in ids:  # new rows start as a copy of the init token's embedding
        assert torch.equal(table[idx], table[5])

    tokenizer.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    text = f"tom is a {START_LATENT} {LATENT} {LATENT} {END_LATENT} ? {PAUSE}"
    assert reloaded(text)["input_ids"] == [2, 3, 4, 8, 9, 9, 10, 6, 11]

    engine = LatentReasoner.from_tokenizer(model, reloaded)
    assert (engine.start_id, engine.latent_id, engine.end_id, engine.eos_id, engine.pad_id) == (8, 9, 10, 1, 0)


def test_adding_twice_adds_nothing():
    tokenizer = word_tokenizer()
    first = add_latent_tokens(tokenizer)
    assert add_latent_tokens(tokenizer) == first and len(tokenizer) == 11


def test_untied_output_rows_are_initialised_too():
    tokenizer = word_tokenizer()
    model = tiny_model("llama", vocab_size=8)  # untied embeddings
    ids = add_latent_tokens(tokenizer, model, init_token="tom")
    head = model.get_output_embeddings().weight
    assert head.shape[0] == 11 and all(torch.equal(head[i], head[2]) for i in ids)


def test_tokenizer_without_latent_tokens_is_refused():
    with pytest.raises(ValueError, match="lacks the special token.*add_latent_tokens"):
        LatentReasoner.from_tokenizer(tiny_model("gpt2"), word_tokenizer())


def test_unknown_init_token_is_refused():
    with pytest.raises(ValueError, match="init_token 'zebra' is not a single token"):
        add_latent_tokens(word_tokenizer(), tiny_model("gpt2", vocab_size=8), init_token="zebra")


def test_from_pretrained_on_a_folder_without_settings_names_the_file(tmp_path):
    import pytest

    from coconut import LatentReasoner

    with pytest.raises(FileNotFoundError, match="coconut.json: no such file; is .* a folder written by coconut's export"):
        LatentReasoner.from_pretrained(tmp_path)
