"""The shared vocabulary of latent reasoning: the marker strings, the label that masks a position, and the ids a
tokenizer gives the markers. One owner for what the data pipeline and the engine both speak; it imports nothing
heavier than the config's error type, so data, engine and methods can all depend on it."""

from __future__ import annotations

from dataclasses import dataclass

# A ValueError (callers of the engine catch those); the command prints it as one line and exits 2.
from coconut.config.checks import ConfigError

START_LATENT = "<|start-latent|>"
LATENT = "<|latent|>"
END_LATENT = "<|end-latent|>"
PAUSE = "<|pause|>"
LATENT_TOKENS = (START_LATENT, LATENT, END_LATENT)
# The tokens each kind of method embeds (see coconut.methods.Method.embeds): the release adds the three
# markers in this order, so on GPT-2 <|start-latent|> is 50257, <|end-latent|> 50258, <|latent|> 50259.
EMBEDDED_TOKENS = {"latent": (START_LATENT, END_LATENT, LATENT), "pause": (PAUSE,), None: ()}

IGNORE_INDEX = -100  # questions, markers, thoughts and padding carry this label


def token_id(tokenizer, token: str) -> int | None:
    """The id of `token` if the tokenizer knows it as a single token, else None."""
    return tokenizer.get_vocab().get(token)


def add_tokens(tokenizer, tokens) -> list[int]:
    """Add `tokens` (in this order, those not yet known) to the tokenizer; returns their ids."""
    new = [t for t in tokens if token_id(tokenizer, t) is None]
    if new:
        tokenizer.add_special_tokens({"additional_special_tokens": new})
    return [token_id(tokenizer, t) for t in tokens]


@dataclass(frozen=True)
class SpecialIds:
    """The ids of the latent markers, EOS, padding and (when present) the pause token: looked up once, here."""

    start: int
    latent: int
    end: int
    eos: int
    pad: int
    pause: int | None = None

    @classmethod
    def from_tokenizer(cls, tokenizer) -> "SpecialIds":
        """With a clear error when a marker or EOS is missing; padding defaults to EOS."""
        found = {token: token_id(tokenizer, token) for token in LATENT_TOKENS}
        missing = [token for token, idx in found.items() if idx is None]
        if missing:
            raise ValueError(
                f"the tokenizer lacks the special token(s) {', '.join(missing)}; add them with "
                "coconut.engine.special_tokens.add_latent_tokens(tokenizer, model) before building a LatentReasoner"
            )
        eos = tokenizer.eos_token_id
        if eos is None:
            raise ConfigError("the tokenizer has no eos_token; set tokenizer.eos_token before building a LatentReasoner")
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
        return cls(start=found[START_LATENT], latent=found[LATENT], end=found[END_LATENT], eos=eos, pad=pad,
                   pause=token_id(tokenizer, PAUSE))

    @property
    def added(self) -> list[int]:
        """The tokens coconut adds to a vocabulary (their embedding rows must train, also under LoRA)."""
        return [self.start, self.latent, self.end] + ([self.pause] if self.pause is not None else [])
