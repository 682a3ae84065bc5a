"""The staged curriculum as pure functions: (tokenised record, method, stage) -> training sample.

COCONUT at stage k replaces the first k language steps by k x c continuous thoughts:

    question <|start-latent|> <|latent|> * (k*c) <|end-latent|> steps[k:] answer <eos>

with labels -100 on the question, the markers and the thoughts. Past `max_latent_stage` every step
is removed and the thoughts stay at the maximum. The paper's baselines and ablations are the same
function with another `method`, never a set of booleans.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

IGNORE_INDEX = -100

METHODS = {
    "coconut": "continuous thoughts replace the first k steps at stage k (c thoughts per step)",
    "cot": "all reasoning steps in language",
    "no_cot": "the answer only",
    "icot": "stepwise internalisation: a growing number of leading CoT tokens removed per stage",
    "pause": "a fixed number of <|pause|> tokens between question and answer",
    "no_curriculum": "COCONUT's final stage from the start (ablation)",
    "no_thought": "the COCONUT curriculum removing steps without adding thoughts (ablation)",
    "pause_as_thought": "the COCONUT curriculum with <|pause|> tokens in place of thoughts (ablation)",
}
LATENT_METHODS = ("coconut", "no_curriculum", "no_thought")  # methods that use the latent markers


@dataclass
class MethodConfig:
    """How a method builds its samples. Unused fields are ignored by methods that do not need them."""

    name: str = "coconut"
    thoughts_per_step: int = 1  # c: ProsQA/ProntoQA 1, GSM8k 2
    max_latent_stage: int = 6  # stages beyond this remove every step and keep max_latent_stage*c thoughts
    pad_latent_to_max: bool = False  # k*c thoughts at stage k (max at the end) even for records with fewer steps
    uniform_prob: float = 0.0  # chance of training a sample at a random other stage (latent-search analysis: 0.3)
    # Stage 0 as `question <bot> <eot> steps` (the paper) or `question <bot> steps`. Without <eot> the hidden
    # state at <bot> learns to predict the first step, which makes it a useful first thought at stage 1.
    eot_at_stage0: bool = True
    num_pause: int = 6  # pause: <|pause|> tokens between question and answer
    icot_tokens_per_stage: int = 8  # icot: CoT tokens removed per stage
    icot_smoothing: float = 4.0  # icot: lambda of the removal smoothing P(o) ~ exp(-lambda*o); 0 turns it off

    def __post_init__(self):
        if self.name not in METHODS:
            raise ValueError(f"unknown method {self.name!r}; expected one of {', '.join(METHODS)}")
        for key in ("thoughts_per_step", "max_latent_stage", "num_pause", "icot_tokens_per_stage"):
            if getattr(self, key) < 0:
                raise ValueError(f"method.{key} must be >= 0, got {getattr(self, key)}")
        if not 0.0 <= self.uniform_prob <= 1.0:
            raise ValueError(f"method.uniform_prob must be in [0, 1], got {self.uniform_prob}")


@dataclass
class SpecialIds:
    start: int
    latent: int
    end: int
    eos: int
    pause: int | None = None

    @classmethod
    def from_tokenizer(cls, tokenizer) -> "SpecialIds":
        from coconut.engine.special_tokens import PAUSE, latent_token_ids

        ids = latent_token_ids(tokenizer)
        return cls(ids["start_id"], ids["latent_id"], ids["end_id"], ids["eos_id"], tokenizer.get_vocab().get(PAUSE))


@dataclass
class TokenizedRecord:
    question: list[int]
    steps: list[list[int]]
    answer: list[int]  # the answer with its prefix (e.g. "### "), without EOS


@dataclass
class Sample:
    input_ids: list[int]
    labels: list[int]
    prompt: list[int]  # what generation starts from: question [+ markers, thoughts or pauses]
    target: list[int]  # what generation should produce: remaining steps + answer + EOS
    stage: int  # the stage this sample was built at (after uniform mixing)
    num_thoughts: int = 0


def _flat(steps: list[list[int]]) -> list[int]:
    return [t for step in steps for t in step]


def _assemble(prefix: list[int], hidden_len: int, rest: list[int], stage: int, thoughts: int) -> Sample:
    # `prefix` is the prompt; its first `hidden_len` tokens are question, markers, thoughts: never labelled.
    return Sample(
        input_ids=prefix + rest,
        labels=[IGNORE_INDEX] * hidden_len + rest,
        prompt=prefix,
        target=rest,
        stage=stage,
        num_thoughts=thoughts,
    )


def latent_plan(num_steps: int, stage: int, method: MethodConfig) -> tuple[int, int]:
    """(steps removed, steps replaced by thoughts) for a record with `num_steps` steps at `stage`."""
    top = method.max_latent_stage
    removed = num_steps if stage > top else min(stage, num_steps)
    wanted = min(stage, top)  # thoughts the stage calls for
    # pad_latent_to_max: a record with fewer steps still gets all of them, so every sample of a stage
    # (and of the final stage) has the same number of thoughts.
    replaced = wanted if method.pad_latent_to_max else min(num_steps, wanted)
    return removed, replaced


def icot_removed(stage: int, method: MethodConfig, rng: random.Random | None) -> int:
    """CoT tokens removed at `stage`; with `rng`, plus the iCoT removal-smoothing offset."""
    removed = stage * method.icot_tokens_per_stage
    if rng is not None and method.icot_smoothing > 0:
        # P(o) proportional to exp(-lambda * o): a geometric draw with ratio exp(-lambda).
        ratio = math.exp(-method.icot_smoothing)
        u = rng.random()
        removed += int(math.log(1 - u) / math.log(ratio)) if ratio > 0 else 0
    return removed


def build_sample(record: TokenizedRecord, method: MethodConfig, stage: int, ids: SpecialIds,
                 rng: random.Random | None = None) -> Sample:
    """The training sample (and generation prompt) of `record` under `method` at `stage`.

    `rng` drives the random parts of training (uniform stage mixing, iCoT smoothing); leave it
    None for evaluation, which is deterministic.
    """
    if stage < 0:
        raise ValueError(f"stage must be >= 0, got {stage}")
    name, q, steps = method.name, record.question, record.steps
    tail = record.answer + [ids.eos]

    if name == "cot":
        return _assemble(q, len(q), _flat(steps) + tail, stage, 0)
    if name == "no_cot":
        return _assemble(q, len(q), tail, stage, 0)
    if name == "pause":
        pauses = [_pause_id(ids)] * method.num_pause
        return _assemble(q + pauses, len(q) + len(pauses), tail, stage, 0)
    if name == "icot":
        cot = _flat(steps)
        return _assemble(q, len(q), cot[min(len(cot), icot_removed(stage, method, rng)):] + tail, stage, 0)

    # The curriculum family: coconut and its ablations.
    if name == "no_curriculum":
        stage = method.max_latent_stage + 1
    elif rng is not None and method.uniform_prob > 0 and rng.random() < method.uniform_prob:
        stage = rng.randint(0, len(steps))
    removed, replaced = latent_plan(len(steps), stage, method)
    count = 0 if name == "no_thought" else replaced * method.thoughts_per_step
    rest = _flat(steps[removed:]) + tail
    if name == "pause_as_thought":
        prefix = q + [_pause_id(ids)] * count
        return _assemble(prefix, len(prefix), rest, stage, 0)
    closing = [] if count == 0 and removed == 0 and not method.eot_at_stage0 else [ids.end]
    prefix = q + [ids.start] + [ids.latent] * count + closing
    return _assemble(prefix, len(prefix), rest, stage, count)


def _pause_id(ids: SpecialIds) -> int:
    if ids.pause is None:
        raise ValueError("this method needs the <|pause|> token: add it with add_latent_tokens(..., pause=True)")
    return ids.pause


@dataclass(frozen=True)
class StageSchedule:
    """Which curriculum stage each epoch trains: stage 0 may last longer (GSM8k: 6 epochs, then 3 per stage)."""

    epochs_per_stage: int
    first_stage_epochs: int | None = None  # epochs of stage 0; None = epochs_per_stage

    def __post_init__(self):
        if self.epochs_per_stage < 1 or (self.first_stage_epochs is not None and self.first_stage_epochs < 1):
            raise ValueError(f"stages need at least one epoch, got {self}")

    @property
    def first(self) -> int:
        return self.epochs_per_stage if self.first_stage_epochs is None else self.first_stage_epochs

    def stage(self, epoch: int) -> int:
        """The stage of a (0-based) epoch."""
        return 0 if epoch < self.first else 1 + (epoch - self.first) // self.epochs_per_stage

    def start(self, stage: int) -> int:
        """The first epoch of a stage."""
        return 0 if stage == 0 else self.first + (stage - 1) * self.epochs_per_stage

    def length(self, stage: int) -> int:
        return self.first if stage == 0 else self.epochs_per_stage

    def ends_stage(self, epoch: int) -> bool:
        return self.stage(epoch + 1) != self.stage(epoch)


def longest_sample_length(record: TokenizedRecord, method: MethodConfig) -> int:
    """An upper bound on the sample length of `record` over all stages of `method`."""
    base = len(record.question) + sum(len(s) for s in record.steps) + len(record.answer) + 1
    if method.name in ("cot", "no_cot", "icot"):
        return base
    if method.name == "pause":
        return len(record.question) + method.num_pause + len(record.answer) + 1
    return base + 2 + method.max_latent_stage * method.thoughts_per_step
