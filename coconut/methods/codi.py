"""CODI (Shen et al. 2025): one model is both teacher and student in one step.

The teacher reads `question CoT answer` with the language-model loss; the student reads `question <bot>`, then
`num_latent` continuous thoughts, then `<eot> answer`, with the loss on the answer; the student's hidden states at
the token before the answer are distilled toward the teacher's at the same token, over every layer
(coconut.engine.codi_loss). As the release (zhenyi4/codi) trains: the teacher's CoT leaves out its last step
unless `include_last_cot`, and records longer than `max_token_num` tokens are skipped."""

from __future__ import annotations

import re
from dataclasses import dataclass

from coconut.methods.base import END, START, THOUGHT, Method
from coconut.methods.step_supervision import StepSupervisionOptions, step_bodies
from coconut.text_format import TextFormat

NUMBER = re.compile(r"[-+]?[\d,]*\.?\d+")
DISTILL_LOSSES = ("smooth_l1", "l2")
# As the release: question, CoT and "The answer is: N" tokenised apart and joined with nothing between.
CODI_FORMAT = TextFormat(question_suffix="", step_suffix="", answer_prefix="The answer is: ", step_separator=" ")


@dataclass
class CodiOptions:
    """The release's names, with the values all its scripts set (zhenyi4/codi scripts/; its code's defaults differ
    for distill_loss_div_std and remove_eos)."""

    num_latent: int = 6  # the student's continuous thoughts
    distill_loss_factor: float = 1.0
    ref_loss_factor: float = 1.0  # the teacher's CE factor
    distill_loss_type: str = "smooth_l1"  # smooth_l1 (beta 1) or l2
    distill_loss_div_std: bool = True  # the distance divided by the teacher's std, per layer
    remove_eos: bool = True  # no EOS after question and CoT
    include_last_cot: bool = False  # the teacher's CoT keeps its last step
    max_token_num: int = 1000  # records longer (question + CoT + answer tokens) are skipped in training


def supervised_steps(steps: list[list[int]], num_latent: int) -> list[list[int]]:
    """The step each of CODI's `num_latent` + 1 supervised vectors reads (the release's CODI: the state at the start
    marker and after each thought, the last one never fed back): step k, the steps from `num_latent` on merged into
    the last, nothing ([]) where the CoT has no step left."""
    targets = [list(s) for s in steps[:num_latent]]
    if len(steps) > num_latent:
        targets.append([t for s in steps[num_latent:] for t in s])
    return targets + [[] for _ in range(num_latent + 1 - len(targets))]


class Codi(Method):
    name, label = "codi", "CODI"
    description = "teacher (CoT) and student (continuous thoughts) in one model, hidden states distilled"
    embeds = "latent"
    table1 = False
    release_checkpoint = "coconut.engine.codi_checkpoint:release_engine"
    release_example = "gsm8k_codi model.release_checkpoint=zen-E/CODI-gpt2"
    options = (CodiOptions, StepSupervisionOptions)
    text_formats = {"codi": CODI_FORMAT}
    paper = {"gsm8k": (43.7, None)}  # Shen et al. 2025, GPT-2 on GSM8k-Aug; its token count is not published
    shows_latent_config = True
    loss = "coconut.engine.codi_loss:codi_loss"

    def block(self, cfg, stage, num_steps):
        return num_steps, [START] + [THOUGHT] * cfg.num_latent + [END]

    def longest_sample(self, cfg, question, steps, answer):
        # The student's sample; the teacher's (question, CoT, answer) is bounded by the base length.
        return max(question + cfg.num_latent + 2 + answer + 1, question + steps + answer + 1)

    def teacher(self, cfg, question: list[int], steps: list[list[int]], answer: list[int], answer_start: int,
                eos: int) -> dict:
        """The teacher's sequence and where the distillation reads it: `ids` (question, CoT, answer, EOS), the
        first labelled position `labelled_from` (the CoT's first token), and `distill` (the position of the token
        before the answer's first token: ':' of "The answer is:" on GPT-2)."""
        if answer_start < 1:
            raise ValueError("CODI distils at the token before the answer, and this answer has no prefix token before "
                             "it (or its prefix tokenises otherwise before the answer): use data.text_format=codi")
        cot = steps if cfg.include_last_cot else steps[:-1]
        flat = [t for step in cot for t in step]
        ids = question + flat + answer + [eos]
        return {"ids": ids, "labelled_from": len(question), "distill": len(question) + len(flat) + answer_start - 1}

    def step_plan(self, cfg, steps, step_ends, removed, thoughts, rest):
        # The release's CODI supervises the state at the start marker and after each thought (the last one never
        # fed back), each with one step of the teacher's CoT.
        cot = step_bodies(steps, step_ends)
        cot = cot if cfg.include_last_cot else cot[:-1]
        return [[j] for j in range(thoughts + 1)], supervised_steps(cot, thoughts)

    def trains_on(self, cfg, answer, tokens):
        # As the release reads GSM8k-Aug, a numeric answer that does not start with a digit (a negative number)
        # is skipped; answers that are not numbers (ProsQA's names) are kept.
        numeric = bool(NUMBER.fullmatch(answer))
        return tokens <= cfg.max_token_num and (not numeric or answer[:1].isdigit())

    def check(self, cfg):
        problems = []
        if cfg.num_latent < 1:
            problems.append(f"method.num_latent must be >= 1 (the student's continuous thoughts), got {cfg.num_latent}")
        if cfg.distill_loss_type not in DISTILL_LOSSES:
            problems.append(f"method.distill_loss_type must be one of {', '.join(DISTILL_LOSSES)} (the release's), "
                            f"got {cfg.distill_loss_type!r}")
        if not cfg.remove_eos:
            problems.append("method.remove_eos=false (an EOS after the question and before the answer, the release's "
                            "default that none of its scripts uses) is not supported; set method.remove_eos=true")
        return problems

    def run_problems(self, run):
        if run.model.release_checkpoint is None:
            return []
        latent = run.latent
        if latent.projection and latent.projection_dim is not None and run.data.tokenizer != "word":
            return []
        return ["model.release_checkpoint is a checkpoint of the CODI release: it needs latent.projection=true with "
                "latent.projection_dim (the release's --prj_dim) and a pretrained tokenizer (start from experiment "
                "gsm8k_codi or gsm8k_codi_llama1b)"]
