"""The staged curriculum as pure functions: (tokenised record, method, stage) -> training sample.

COCONUT at stage k replaces the first k language steps by k x c continuous thoughts:

    question <|start-latent|> <|latent|> * (k*c) <|end-latent|> steps[k:] answer <eos>

with labels -100 on the question, the markers and the thoughts. Past `max_latent_stage` every step
is removed and the thoughts stay at the maximum. The paper's baselines and ablations are the same
function with another `method`, never a set of booleans; only iCoT, whose removal follows the batch
(coconut.data.icot_schedule), has its own `icot_sample`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from coconut.config import MethodConfig
from coconut.engine.loss import IGNORE_INDEX
from coconut.engine.special_tokens import SpecialIds

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


def icot_sample(record: TokenizedRecord, removed: float, ids: SpecialIds, stage: int = 0) -> Sample:
    """iCoT's sample: the first `removed` CoT tokens dropped (all of them when it exceeds the CoT, the answer
    always kept, as the release clamps the removal to the CoT); `removed` comes from coconut.data.icot_schedule."""
    cot = _flat(record.steps)
    kept = cot[int(min(len(cot), removed)):]
    return _assemble(record.question, len(record.question), kept + record.answer + [ids.eos], stage, 0)


def build_sample(record: TokenizedRecord, method: MethodConfig, stage: int, ids: SpecialIds,
                 rng: random.Random | None = None) -> Sample:
    """The training sample (and generation prompt) of `record` under `method` at `stage`.

    `rng` drives the random parts of training (uniform stage mixing); leave it
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
        # Its removal follows the batch within the epoch, not the stage (coconut.data.icot_schedule).
        raise ValueError("icot samples depend on the batch, not only the stage: build them with icot_sample")

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
    if name == "no_thought":  # the release writes no <bot><eot> markers when there are no thoughts
        return _assemble(q, len(q), rest, stage, 0)
    closing = [] if count == 0 and removed == 0 and not method.eot_at_stage0 else [ids.end]
    prefix = q + [ids.start] + [ids.latent] * count + closing
    return _assemble(prefix, len(prefix), rest, stage, count)


def _pause_id(ids: SpecialIds) -> int:
    if ids.pause is None:
        raise ValueError("this method needs the <|pause|> token: add it with add_latent_tokens(..., pause=True)")
    return ids.pause


def longest_sample_length(record: TokenizedRecord, method: MethodConfig) -> int:
    """An upper bound on the sample length of `record` over all stages of `method`."""
    base = len(record.question) + sum(len(s) for s in record.steps) + len(record.answer) + 1
    if method.name in ("cot", "no_cot", "icot"):
        return base
    if method.name == "pause":
        return len(record.question) + method.num_pause + len(record.answer) + 1
    return base + 2 + method.max_latent_stage * method.thoughts_per_step
