"""w/o curriculum (ablation): COCONUT's final stage from the first step."""

from coconut.methods.curriculum import Curriculum


class NoCurriculum(Curriculum):
    name, label = "no_curriculum", "w/o curriculum"
    description = "COCONUT's final stage from the start (ablation)"
    stepwise = False  # its samples never change

    def final_stage(self, cfg, last_stage):
        return 0

    def sample_stage(self, cfg, stage, num_steps, rng=None):
        return cfg.max_latent_stage + 1  # every step removed, the thoughts at their maximum, at every stage
