"""Pause tokens: a fixed number of <|pause|> tokens between the question and the answer."""

from coconut.methods.base import PAUSE, Method


class Pause(Method):
    name, label = "pause", "Pause token"
    description = "a fixed number of <|pause|> tokens between question and answer"
    embeds = "pause"
    fields = ("num_pause",)

    def block(self, cfg, stage, num_steps):
        return num_steps, [PAUSE] * cfg.num_pause

    def longest_sample(self, cfg, question, steps, answer):
        return question + cfg.num_pause + answer + 1
