"""CoT: every reasoning step written in language before the answer."""

from coconut.methods.base import Method


class CoT(Method):
    name, label, description = "cot", "CoT", "all reasoning steps in language"
