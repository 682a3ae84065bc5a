"""CODI (Shen et al. 2025): one model is both teacher and student in one step.

The teacher reads `question CoT answer` with the language-model loss; the student reads `question <bot>`, then
`num_latent` continuous thoughts, then `<eot> answer`, with the loss on the answer; the student's hidden states at
the token before the answer are distilled toward the teacher's at the same token, over every layer
(coconut.engine.codi_loss). As the release (zhenyi4/codi) trains: the teacher's CoT leaves out its last step
unless `include_last_cot`, and records longer than `max_token_num` tokens are skipped."""

from __future__ import annotations

import re

from coconut.methods.base import END, START, THOUGHT, Method

NUMBER = re.compile(r"[-+]?[\d,]*\.?\d+")

CODI_FIELDS = ("num_latent", "distill_loss_factor", "ref_loss_factor", "distill_loss_type", "distill_loss_div_std",
               "remove_eos", "include_last_cot", "max_token_num")
DISTILL_LOSSES = ("smooth_l1", "l2")


class Codi(Method):
    name, label = "codi", "CODI"
    description = "teacher (CoT) and student (continuous thoughts) in one model, hidden states distilled"
    embeds = "latent"
    table1 = False
    loads_release_checkpoints = True
    fields = CODI_FIELDS
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
