"""COCONUT: continuous thoughts replace the first k language steps at stage k (c thoughts per step)."""

from coconut.methods.curriculum import Curriculum, CurriculumOptions
from coconut.methods.step_supervision import StepSupervisionOptions


class Coconut(Curriculum):
    name, label = "coconut", "COCONUT"
    description = "continuous thoughts replace the first k steps at stage k (c thoughts per step)"
    paper = {"gsm8k": (34.1, 8.2), "prontoqa": (99.8, 9.0), "prosqa": (97.0, 14.2)}  # COCONUT's Table 1 (GPT-2)
    options = (CurriculumOptions, StepSupervisionOptions)
