"""w/o thought (ablation): the COCONUT curriculum removing language steps without putting thoughts in place."""

from coconut.methods.curriculum import Curriculum, latent_plan


class NoThought(Curriculum):
    name, label = "no_thought", "w/o thought"
    description = "the COCONUT curriculum removing steps without adding thoughts (ablation)"
    paper = {"gsm8k": (21.6, 2.3), "prontoqa": (99.9, 3.0), "prosqa": (95.5, 8.2)}  # COCONUT's Table 1 (GPT-2)
    embeds = None  # the release adds no tokens: the model keeps its vocabulary
    thoughts_per_removed_step = False

    def block(self, cfg, stage, num_steps):
        removed, _ = latent_plan(num_steps, stage, cfg)
        return removed, []  # the release writes no <bot><eot> markers when there are no thoughts
