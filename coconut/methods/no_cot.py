"""No-CoT: the answer right after the question."""

from coconut.methods.base import Method


class NoCoT(Method):
    name, label, description = "no_cot", "No-CoT", "the answer only"

    def block(self, cfg, stage, num_steps):
        return num_steps, []
