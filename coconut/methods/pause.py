"""Pause tokens: a fixed number of <|pause|> tokens between the question and the answer."""

from dataclasses import dataclass

from coconut.methods.base import PAUSE, Method


@dataclass
class PauseOptions:
    num_pause: int = 6  # <|pause|> tokens between question and answer

    @staticmethod
    def problems(cfg) -> list[str]:
        return [f"method.num_pause must be >= 0, got {cfg.num_pause}"] if cfg.num_pause < 0 else []


class Pause(Method):
    name, label = "pause", "Pause token"
    description = "a fixed number of <|pause|> tokens between question and answer"
    paper = {"gsm8k": (16.4, 2.2), "prontoqa": (77.7, 3.0), "prosqa": (75.9, 8.2)}  # COCONUT's Table 1 (GPT-2)
    embeds = "pause"
    options = (PauseOptions,)

    def block(self, cfg, stage, num_steps):
        return num_steps, [PAUSE] * cfg.num_pause

    def longest_sample(self, cfg, question, steps, answer):
        return question + cfg.num_pause + answer + 1
