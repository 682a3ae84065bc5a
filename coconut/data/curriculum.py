"""The staged curriculum as pure functions: (tokenised record, method, stage) -> training sample.

COCONUT at stage k replaces the first k language steps by k x c continuous thoughts:

    question <|start-latent|> <|latent|> * (k*c) <|end-latent|> steps[k:] answer <eos>

with labels -100 on the question, the markers and the thoughts. Past `max_latent_stage` every step
is removed and the thoughts stay at the maximum. The paper's baselines and ablations are the same
function with another method object (coconut.methods: which steps it removes, which tokens follow the
question); only iCoT, whose removal follows the batch (coconut.methods.icot_schedule), has its own `icot_sample`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from coconut.config import MethodConfig
from coconut.markers import IGNORE_INDEX, SpecialIds
from coconut.methods import method as method_named
from coconut.methods.base import END, PAUSE, START, THOUGHT
from coconut.methods.curriculum import latent_plan  # noqa: F401  (re-exported: the analysis plans with it)


@dataclass
class TokenizedRecord:
    question: list[int]
    steps: list[list[int]]
    answer: list[int]  # the answer with its prefix (e.g. "### "), without EOS
    answer_start: int = 0  # where the answer itself starts in `answer`, after its prefix and any blank token
    step_ends: list[int] | None = None  # each step's length without its suffix (the newline after it)


@dataclass
class Sample:
    input_ids: list[int]
    labels: list[int]
    prompt: list[int]  # what generation starts from: question [+ markers, thoughts or pauses]
    target: list[int]  # what generation should produce: remaining steps + answer + EOS
    stage: int  # the stage this sample was built at (after uniform mixing)
    num_thoughts: int = 0
    # A method that trains a second sequence beside this one (CODI's teacher): its ids, its first labelled position,
    # and the positions, in it and in input_ids, whose hidden states the method compares (-1: none).
    teacher_ids: list[int] | None = None
    teacher_labelled_from: int = 0
    teacher_distill: int = -1
    distill: int = -1
    # Step supervision (coconut.methods.step_supervision), per supervised thought: the positions in input_ids whose
    # last hidden state becomes its thought vectors, and the ids of its step then EOS ([] for none).
    step_sources: list[list[int]] | None = None
    step_targets: list[list[int]] | None = None


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


def icot_sample(record: TokenizedRecord, removed: float, ids: SpecialIds, stage: int = 0) -> Sample:
    """iCoT's sample: the first `removed` CoT tokens dropped (all of them when it exceeds the CoT, the answer
    always kept, as the release clamps the removal to the CoT); `removed` comes from coconut.methods.icot_schedule."""
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
    m, q, steps = method_named(method.name), record.question, record.steps
    if m.batch_dependent:
        raise ValueError(f"{m.name} samples depend on the batch, not only the stage: build them with icot_sample")
    stage = m.sample_stage(method, stage, len(steps), rng)
    removed, kinds = m.block(method, stage, len(steps))
    prefix = q + [_token(ids, kind) for kind in kinds]
    rest = _flat(steps[removed:]) + record.answer + [ids.eos]
    sample = _assemble(prefix, len(prefix), rest, stage, kinds.count(THOUGHT))
    teacher = m.teacher(method, q, steps, record.answer, record.answer_start, ids.eos)
    if teacher is not None:
        sample.teacher_ids, sample.teacher_labelled_from = teacher["ids"], teacher["labelled_from"]
        sample.teacher_distill = teacher["distill"]
        sample.distill = len(prefix) + len(_flat(steps[removed:])) + record.answer_start - 1
    if getattr(method, "step_supervision", False):
        _plan_steps(sample, m, method, record, removed, ids)
    return sample


def _plan_steps(sample: Sample, m, method: MethodConfig, record: TokenizedRecord, removed: int,
                ids: SpecialIds) -> None:
    latents = [i for i, t in enumerate(sample.prompt) if t == ids.latent]
    rest = sample.target[:-1]  # after the end marker, up to EOS
    groups, targets = m.step_plan(method, record.steps, record.step_ends, removed, len(latents), rest)
    # Vector j < n is the j-th thought's input (the state before it); vector n the state of the last thought.
    source = [i - 1 for i in latents] + latents[-1:]
    sample.step_sources = [[source[j] for j in group] for group in groups]
    sample.step_targets = [target + [ids.eos] if target else [] for target in targets]


def _token(ids: SpecialIds, kind: str) -> int:
    return _pause_id(ids) if kind == PAUSE else {START: ids.start, THOUGHT: ids.latent, END: ids.end}[kind]


def _pause_id(ids: SpecialIds) -> int:
    if ids.pause is None:
        raise ValueError("this method needs the <|pause|> token: add it with add_latent_tokens(..., pause=True)")
    return ids.pause


def longest_sample_length(record: TokenizedRecord, method: MethodConfig) -> int:
    """An upper bound on the sample length of `record` over all stages of `method`."""
    return method_named(method.name).longest_sample(method, len(record.question), sum(map(len, record.steps)),
                                                    len(record.answer))
