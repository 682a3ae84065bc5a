"""CoT: every reasoning step written in language before the answer."""

from coconut.methods.base import Method


class CoT(Method):
    name, label, description = "cot", "CoT", "all reasoning steps in language"
    paper = {"gsm8k": (42.9, 25.0), "prontoqa": (98.8, 92.5), "prosqa": (77.5, 49.4)}  # COCONUT's Table 1 (GPT-2)
