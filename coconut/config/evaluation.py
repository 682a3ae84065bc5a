"""Generation when validating and testing, and what decoding reads back after a token."""

from __future__ import annotations

import math
from dataclasses import dataclass

from coconut.config.checks import require

DECODERS = ("greedy", "soft_thinking", "mixture_of_inputs")
# Generated tokens at most, where nothing sets it: the one default every generating function takes.
DEFAULT_MAX_NEW_TOKENS = 64


@dataclass
class EvalConfig:
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS  # the release: 128 on ProsQA and ProntoQA, 64 on GSM8k (set by the experiments)
    # How an answer is judged: "release" compares the text after the last '#' (the marker's last character),
    # stripped, with commas removed on both sides; "lenient" ignores all whitespace after the marker.
    scoring: str = "release"
    thoughts: str = "fixed"  # fixed: the stage's k*c thoughts | learned: until the stop classifier says stop
    stop_threshold: float = 0.5  # learned: stop when P(stop) reaches this
    samples_to_log: int = 4  # generations shown as text in TensorBoard at each validation
    # The checkpoint a run tests after training: "best" (the best validation accuracy within the final stage)
    # or "last" (the final one: every method compared after the same number of steps, as the demo does).
    checkpoint: str = "best"
    # When a validation ends a stage, the validation questions are scored again at the next stage's inputs (the
    # accuracy at the stage's entry, before any training on them: coconut.train.transitions). Stepwise methods only.
    transition_entry: bool = True
    transition_questions: int = 0  # the entry scores this many validation questions at most; 0: those validated

    def __post_init__(self):
        require(self.thoughts in ("fixed", "learned"), f"eval.thoughts must be fixed or learned, got {self.thoughts!r}")
        require(self.checkpoint in ("best", "last"), f"eval.checkpoint must be best or last, got {self.checkpoint!r}")
        require(self.scoring in ("release", "lenient"), f"eval.scoring must be release or lenient, got {self.scoring!r}")
        require(self.max_new_tokens >= 1, f"eval.max_new_tokens must be >= 1 (the answer is generated), "
                                          f"got {self.max_new_tokens}")
        require(0.0 <= self.stop_threshold <= 1.0,
                 f"eval.stop_threshold is a probability, must be in [0, 1], got {self.stop_threshold}")
        require(self.transition_questions >= 0, "eval.transition_questions must be >= 0 (0: the questions "
                                                f"validation scores), got {self.transition_questions}")
        require(self.samples_to_log >= 0, f"eval.samples_to_log must be >= 0, got {self.samples_to_log}")


@dataclass
class DecodeConfig:
    name: str = "greedy"  # greedy | soft_thinking | mixture_of_inputs; defaults: the releases' (soft_inputs.py)
    temperature: float = 0.6  # soft_thinking: divides the logits before the filters and the cold-stop entropy
    top_k: int = 30  # soft_thinking: the most likely tokens kept,
    top_p: float = 0.95  # then the smallest prefix reaching this renormalised mass,
    min_p: float = 0.001  # then tokens below min_p x the most likely one dropped;
    max_topk: int = 10  # the most likely survivors mixed, at most
    cold_stop_entropy: float = 0.01  # soft_thinking: entropy (nats) under which a step is confident; 0 = off
    cold_stop_patience: int = 256  # soft_thinking: confident steps in a row, then the answer marker is written
    beta: float = 1.0  # mixture_of_inputs: weight of the observed token against the top-k distribution
    moi_top_k: int = 20  # mixture_of_inputs: tokens in the prior; its log normalises the entropy, so >= 2

    def __post_init__(self):
        require(self.name in DECODERS, f"decode.name must be one of {', '.join(DECODERS)}, got {self.name!r}")
        least = (("top_k", 1), ("max_topk", 1), ("cold_stop_patience", 1), ("moi_top_k", 2))  # log(moi_top_k) divides
        ok = {"temperature > 0": 0 < self.temperature < math.inf, "top_p in (0, 1]": 0 < self.top_p <= 1,
              "min_p in [0, 1]": 0 <= self.min_p <= 1, "cold_stop_entropy >= 0": self.cold_stop_entropy >= 0,
              "beta >= 0": self.beta >= 0, **{f"{key} >= {n}": getattr(self, key) >= n for key, n in least}}
        require(all(ok.values()), "must hold: " + ", ".join(f"decode.{rule}" for rule, good in ok.items() if not good))

    def used_fields(self) -> tuple[str, ...]:
        soft = ("temperature", "top_k", "top_p", "min_p", "max_topk", "cold_stop_entropy", "cold_stop_patience")
        return ("name",) + {"soft_thinking": soft, "mixture_of_inputs": ("beta", "moi_top_k")}.get(self.name, ())
