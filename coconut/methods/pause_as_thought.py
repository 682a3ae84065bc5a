"""pause as thought (ablation): the COCONUT curriculum with <|pause|> tokens where the thoughts would be."""

from coconut.methods.base import PAUSE
from coconut.methods.curriculum import Curriculum, latent_plan


class PauseAsThought(Curriculum):
    name, label = "pause_as_thought", "pause as thought"
    description = "the COCONUT curriculum with <|pause|> tokens in place of thoughts (ablation)"
    paper = {"gsm8k": (24.1, 2.2), "prontoqa": (100.0, 3.0), "prosqa": (96.6, 8.2)}  # COCONUT's Table 1 (GPT-2)
    embeds = "pause"

    def block(self, cfg, stage, num_steps):
        removed, replaced = latent_plan(num_steps, stage, cfg)
        return removed, [PAUSE] * (replaced * cfg.thoughts_per_step)
