"""Step supervision (SIM-CoT, Wei et al. 2025): an auxiliary decoder reads each continuous thought and is trained to
write the language step that thought replaced; it is dropped at inference, so generation costs nothing more.

The option group latent methods share (COCONUT and its curriculum, CODI), and which thought reads which step, as the
release computes it (InternLM/SIM-CoT, `Coconut/` and `CODI/`): a torch-free plan of token ids that the data
pipeline turns into sample fields and the engine's coconut.engine.step_decoder into a loss.
"""

from __future__ import annotations

from dataclasses import dataclass

STEP_LOSS_PER = ("sequence", "token")


@dataclass
class StepSupervisionOptions:
    TRAINING_ONLY = True  # nothing of it reaches the exported model's prompt (coconut.methods.Method.prompt_fields)

    step_supervision: bool = False  # train the auxiliary decoder beside the method (never exported)
    step_loss_weight: float = 1.0  # its loss's factor in the total (both releases: 1)
    # How each thought's decoder loss averages its tokens: "sequence" (the release's COCONUT: the step's token CE
    # summed, divided by the rows with a step; the thoughts' losses averaged) or "token" (the release's CODI: the
    # mean over the step tokens; averaged over the thoughts that have a step).
    step_loss_per: str = "sequence"
    # The decoder's first position id (the release's COCONUT counts from 1, its CODI from 0).
    step_decoder_first_position: int = 1
    # The decoder trains with its dropout on (the release's CODI) or off (the release's COCONUT never switches it
    # to training mode).
    step_decoder_dropout: bool = False

    @staticmethod
    def shown(cfg) -> bool:
        """Its fields appear in the shown config only when it is on."""
        return cfg.step_supervision

    @staticmethod
    def problems(cfg) -> list[str]:
        out = []
        if cfg.step_loss_per not in STEP_LOSS_PER:
            out.append(f"method.step_loss_per must be one of {', '.join(STEP_LOSS_PER)}, got {cfg.step_loss_per!r}")
        if cfg.step_loss_weight < 0:
            out.append(f"method.step_loss_weight must be >= 0, got {cfg.step_loss_weight}")
        if cfg.step_decoder_first_position < 0:
            out.append(f"method.step_decoder_first_position must be >= 0, got {cfg.step_decoder_first_position}")
        return out


def step_bodies(steps: list[list[int]], ends: list[int] | None) -> list[list[int]]:
    """Each step's tokens without its suffix (the newline after it): `ends[k]` tokens of step k (all without ends)."""
    if ends is None:
        return [list(s) for s in steps]
    return [list(s[:e]) for s, e in zip(steps, ends)]


def curriculum_targets(steps: list[list[int]], ends: list[int] | None, removed: int, thoughts: int,
                       max_latent_stage: int, rest: list[int]) -> list[list[int]]:
    """The step each thought reads under the release's COCONUT mapping (one target per thought, EOS not added).

    Thought t reads the t-th removed step (without its newline); the steps from the `max_latent_stage`-th on are
    merged into the last thought's, joined by their newlines; thoughts beyond the removed steps (a sample padded to
    the stage's thoughts) read `rest`, the sample's text after `<|end-latent|>` (once every step is latent: the
    answer)."""
    bodies = step_bodies(steps[:removed], ends[:removed] if ends is not None else None)
    kept = steps[:removed]
    targets = bodies[: max(max_latent_stage - 1, 0)]
    if len(bodies) >= max_latent_stage >= 1:  # the last thought: every remaining step, joined by their newlines
        tail = range(max_latent_stage - 1, len(bodies))
        targets.append([t for k in tail for t in (bodies[k] if k == tail[-1] else kept[k])])
    else:
        targets = bodies[:]
    while len(targets) < thoughts:
        targets.append(list(rest))
    return targets[:thoughts]

