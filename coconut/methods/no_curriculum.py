"""w/o curriculum (ablation): COCONUT's final stage from the first step."""

from coconut.methods.curriculum import Curriculum, CurriculumOptions
from coconut.methods.step_supervision import StepSupervisionOptions


class NoCurriculum(Curriculum):
    name, label = "no_curriculum", "w/o curriculum"
    description = "COCONUT's final stage from the start (ablation)"
    paper = {"gsm8k": (14.4, 8.2), "prontoqa": (52.4, 9.0), "prosqa": (76.1, 14.2)}  # COCONUT's Table 1 (GPT-2)
    options = (CurriculumOptions, StepSupervisionOptions)
    stepwise = False  # its samples never change

    def final_stage(self, cfg, last_stage):
        return 0

    def sample_stage(self, cfg, stage, num_steps, rng=None):
        return cfg.max_latent_stage + 1  # every step removed, the thoughts at their maximum, at every stage
