"""No-CoT: the answer right after the question."""

from coconut.methods.base import Method


class NoCoT(Method):
    name, label, description = "no_cot", "No-CoT", "the answer only"
    paper = {"gsm8k": (16.5, 2.2), "prontoqa": (93.8, 3.0), "prosqa": (76.7, 8.2)}  # COCONUT's Table 1 (GPT-2)

    def block(self, cfg, stage, num_steps):
        return num_steps, []
