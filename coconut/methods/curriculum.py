"""The staged curriculum COCONUT and its ablations share: at stage k the first k language steps are removed
(replaced by k x c continuous thoughts for COCONUT); past `max_latent_stage` every step is removed and the
thoughts stay at the maximum."""

from __future__ import annotations

from dataclasses import dataclass

from coconut.methods.base import END, START, THOUGHT, Method
from coconut.methods.step_supervision import curriculum_targets


@dataclass
class CurriculumOptions:
    thoughts_per_step: int = 1  # c: ProsQA/ProntoQA 1, GSM8k 2
    max_latent_stage: int = 6  # stages beyond this remove every step and keep max_latent_stage*c thoughts
    pad_latent_to_max: bool = False  # k*c thoughts at stage k (max at the end) even for records with fewer steps
    uniform_prob: float = 0.0  # chance of training a sample at a random other stage (latent-search analysis: 0.3)
    # Stage 0 as `question <bot> <eot> steps` (the paper) or `question <bot> steps`. Without <eot> the hidden
    # state at <bot> learns to predict the first step, which makes it a useful first thought at stage 1.
    eot_at_stage0: bool = True

    @staticmethod
    def problems(cfg) -> list[str]:
        out = [f"method.{key} must be >= 0, got {getattr(cfg, key)}"
               for key in ("thoughts_per_step", "max_latent_stage") if getattr(cfg, key) < 0]
        if not 0.0 <= cfg.uniform_prob <= 1.0:
            out.append(f"method.uniform_prob must be in [0, 1], got {cfg.uniform_prob}")
        return out


def latent_plan(num_steps: int, stage: int, method) -> tuple[int, int]:
    """(steps removed, steps replaced by thoughts) for a record with `num_steps` steps at `stage` under `method`
    (its config: max_latent_stage, pad_latent_to_max)."""
    top = method.max_latent_stage
    removed = num_steps if stage > top else min(stage, num_steps)
    wanted = min(stage, top)  # thoughts the stage calls for
    # pad_latent_to_max: a record with fewer steps still gets all of them, so every sample of a stage
    # (and of the final stage) has the same number of thoughts.
    replaced = wanted if method.pad_latent_to_max else min(num_steps, wanted)
    return removed, replaced


class Curriculum(Method):
    """Stepwise: one more language step removed at each stage, c continuous thoughts in its place."""

    embeds = "latent"
    stepwise = True
    options = (CurriculumOptions,)
    shows_latent_config = True
    thoughts_per_removed_step = True

    def final_stage(self, cfg, last_stage):
        return cfg.max_latent_stage + 1

    def sample_stage(self, cfg, stage, num_steps, rng=None):
        # Stage mixing (the paper's latent-search analysis): a sample trains at a random other stage.
        if rng is not None and cfg.uniform_prob > 0 and rng.random() < cfg.uniform_prob:
            return rng.randint(0, num_steps)
        return stage

    def block(self, cfg, stage, num_steps):
        removed, replaced = latent_plan(num_steps, stage, cfg)
        count = replaced * cfg.thoughts_per_step
        # Stage 0 without <|end-latent|> (eot_at_stage0=false): the hidden state at <|start-latent|> learns to
        # predict the first step, which makes it a useful first thought at stage 1.
        closing = [] if count == 0 and removed == 0 and not cfg.eot_at_stage0 else [END]
        return removed, [START] + [THOUGHT] * count + closing

    def longest_sample(self, cfg, question, steps, answer):
        return question + steps + answer + 1 + 2 + cfg.max_latent_stage * cfg.thoughts_per_step

    def step_plan(self, cfg, steps, step_ends, removed, thoughts, rest):
        # Thought t is the group of c continuous thoughts that replaced step t.
        c = cfg.thoughts_per_step
        groups = [list(range(t * c, t * c + c)) for t in range(thoughts // c)]
        return groups, curriculum_targets(steps, step_ends, removed, len(groups), cfg.max_latent_stage, rest)

    def check(self, cfg):
        # c = 0 would train the method with no thought at all, and the run would carry its label.
        problems = super().check(cfg)
        if self.thoughts_per_removed_step and cfg.thoughts_per_step < 1:
            return problems + [f"method.thoughts_per_step must be >= 1 for method {self.name} (it is c, the continuous thoughts "
                    f"per removed step), got {cfg.thoughts_per_step}; the ablation without thoughts is "
                    f"method=no_thought"]
        return problems
