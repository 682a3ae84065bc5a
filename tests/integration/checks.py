"""Checks on a run's evaluation metrics shared by the integration tests: the metrics agree with each other,
and with the same checkpoint scored again question by question (one prompt at a time, no Lightning loop,
no torchmetrics), so an accuracy is the fraction of answers found correct, not just a number in [0, 1]."""

from __future__ import annotations

import pytest
import torch


def check_consistent(metrics: dict, prefix: str, questions: int) -> None:
    """tokens = language tokens + thoughts; accuracies are counts over `questions`."""
    def m(name):
        return float(metrics[f"{prefix}/{name}"])

    assert m("tokens") == pytest.approx(m("language_tokens") + m("thoughts"), abs=1e-4)
    for name in ("acc", "cot_match"):
        count = m(name) * questions
        assert 0 <= m(name) <= 1 and count == pytest.approx(round(count), abs=1e-3), (name, m(name), questions)


def rescore(cfg, checkpoint, split: str = "test") -> dict:
    """acc, tokens, language_tokens, thoughts and passes of a checkpoint at its stage, one question at a time
    (their means, and under "per_question" the values of each question in order)."""
    from coconut.data.scoring import answer_correct
    from coconut.train.build import build_system
    from coconut.train.checkpoints import check_checkpoint, checkpoint_stage, load_weights

    state = check_checkpoint(str(checkpoint))
    module, datamodule, tokenizer = build_system(cfg)
    load_weights(module, state, str(checkpoint))
    datamodule.setup("test")
    datamodule.freeze_stage(checkpoint_stage(state, cfg.trainer.schedule))
    module.eval()
    correct, language, thoughts, passes = [], [], [], []
    with torch.no_grad():
        for sample, answer in datamodule.eval_items(split):
            prompt = torch.tensor([sample.prompt])
            out = module.generate(prompt, torch.ones_like(prompt))
            n = int(out.num_generated[0])
            text = tokenizer.decode(out.sequences[0, :n].tolist(), skip_special_tokens=True)
            correct.append(answer_correct(text, answer, module.generation.answer_marker, module.generation.scoring))
            language.append(n - int(n > 0 and int(out.sequences[0, n - 1]) == tokenizer.eos_token_id))
            thoughts.append(int(out.num_thoughts[0]))
            passes.append(int(out.num_forward_passes[0]))
    per_question = {"acc": [float(c) for c in correct], "language_tokens": language, "thoughts": thoughts,
                    "tokens": [a + b for a, b in zip(language, thoughts)], "passes": passes}
    means = {name: sum(values) / len(values) for name, values in per_question.items()}
    return {**means, "questions": len(correct), "per_question": per_question}


def check_rescored(metrics: dict, prefix: str, cfg, checkpoint, split: str = "test") -> dict[str, float]:
    """The logged metrics equal the question-by-question rescoring of the checkpoint they came from."""
    again = rescore(cfg, checkpoint, split)
    for name in ("acc", "language_tokens", "thoughts", "tokens", "passes"):
        assert float(metrics[f"{prefix}/{name}"]) == pytest.approx(again[name], abs=1e-4), name
    check_consistent(metrics, prefix, again["questions"])
    return again
