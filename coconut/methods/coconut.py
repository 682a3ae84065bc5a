"""COCONUT: continuous thoughts replace the first k language steps at stage k (c thoughts per step)."""

from coconut.methods.curriculum import Curriculum


class Coconut(Curriculum):
    name, label = "coconut", "COCONUT"
    description = "continuous thoughts replace the first k steps at stage k (c thoughts per step)"
