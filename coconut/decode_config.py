"""The decoding rule's settings (the `decode` config group), free of torch so configs load fast."""

from __future__ import annotations

from dataclasses import dataclass

DECODERS = ("greedy", "soft_thinking", "mixture_of_inputs")


@dataclass
class DecodeConfig:
    name: str = "greedy"  # greedy | soft_thinking | mixture_of_inputs
    top_k: int = 10  # soft_thinking: tokens mixed at most
    top_p: float = 0.95  # soft_thinking: smallest set of those reaching this probability mass
    cold_stop_entropy: float = 0.1  # soft_thinking: entropy (nats) below which a step counts as confident
    cold_stop_patience: int = 2  # soft_thinking: confident steps in a row that end the soft phase; 0 = never
    beta: float = 1.0  # mixture_of_inputs: weight of the chosen token against the distribution

    def __post_init__(self):
        if self.name not in DECODERS:
            raise ValueError(f"decode.name must be one of {', '.join(DECODERS)}, got {self.name!r}")
        if self.top_k < 1 or not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"decode.top_k must be >= 1 and decode.top_p in (0, 1], got {self.top_k}, {self.top_p}")
        if self.beta < 0 or self.cold_stop_patience < 0 or self.cold_stop_entropy < 0:
            raise ValueError("decode.beta, decode.cold_stop_entropy and decode.cold_stop_patience must be >= 0")
