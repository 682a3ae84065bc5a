"""A word-level tokenizer built from a data set, for models trained from scratch on synthetic tasks.

Every word and punctuation mark is one token, so a made-up name like `wumpus` or `c17` costs one
position. It is a Hugging Face fast tokenizer: saved with the run, reloaded with
`AutoTokenizer.from_pretrained(folder)`.
"""

from __future__ import annotations

from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from coconut.markers import LATENT_TOKENS, PAUSE, add_tokens

PAD, EOS, UNK = "<pad>", "<eos>", "<unk>"


def _pre_tokenizer():
    return pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation("isolated")])


def words_of(texts) -> set[str]:
    # Split at spaces first and pre-tokenize each distinct piece once: the pre-tokenizer splits at every space
    # anyway, so the words are the same, and a data set's texts repeat the same few pieces many times over.
    pre = _pre_tokenizer()
    pieces = {piece for text in texts for piece in text.split(" ")}
    return {word for piece in pieces for word, _ in pre.pre_tokenize_str(piece)}


def build_word_tokenizer(records: list[dict], extra_texts=()) -> PreTrainedTokenizerFast:
    """Vocabulary: `<pad>` `<eos>` `<unk>`, the words of the records, then the latent and pause tokens."""
    texts = [t for r in records for t in (r["question"], r["answer"], *r["steps"])]
    words = sorted(words_of(list(texts) + list(extra_texts)) - {PAD, EOS, UNK})
    vocab = {token: i for i, token in enumerate([PAD, EOS, UNK, *words])}
    core = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    core.pre_tokenizer = _pre_tokenizer()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, pad_token=PAD, eos_token=EOS, unk_token=UNK)
    add_tokens(tokenizer, LATENT_TOKENS + (PAUSE,))
    return tokenizer
