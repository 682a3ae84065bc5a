"""Ask an exported model a question: `LatentReasoner.from_pretrained(folder).answer("...")`.

The prompt is built from the format the export recorded (`coconut.engine.prompt_format`), the questions are
generated in batches by the engine's KV-cached `generate` with the run's evaluation settings (decoder, learned
stop, max_new_tokens), and each generation is read as the run's scoring reads it. A list of questions gives
the answers that asking them one at a time gives.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from coconut.config.checks import ConfigError
from coconut.engine.prompt_format import PromptFormat


@dataclass
class Answer:
    """One question's answer."""

    answer: str | None  # what the scoring rule reads after the answer marker (stripped); None: no marker written
    text: str  # everything generated, special tokens left out
    generated_tokens: int  # language tokens generated, the final EOS not counted (as the run's `language_tokens`)
    thoughts: int  # continuous thoughts before the answer (<|pause|> tokens are not thoughts, as in the run's metrics)

    @property
    def tokens(self) -> int:
        """The paper's count, as the run's `tokens` metric: language tokens plus thoughts."""
        return self.generated_tokens + self.thoughts


def _steps_per_question(steps, count: int) -> list:
    if steps is None or isinstance(steps, int):
        return [steps] * count
    steps = list(steps)
    if len(steps) != count:
        raise ValueError(f"answer: {len(steps)} step counts for {count} questions; give one per question")
    return steps


def _check_questions(questions) -> list[str]:
    if isinstance(questions, str):
        return [questions]
    questions = list(questions)
    bad = next((i for i, q in enumerate(questions) if not isinstance(q, str)), None)
    if bad is not None:
        raise TypeError(f"answer: question {bad} is a {type(questions[bad]).__name__}, not a string")
    return questions


@torch.no_grad()
def answer_questions(engine, tokenizer, fmt: PromptFormat, questions, steps=None, batch_size: int = 32,
                     max_new_tokens: int | None = None) -> list[Answer]:
    """The answers of `engine` to `questions` (a list of strings) under `fmt`, `batch_size` at a time.

    steps: each question's number of reasoning steps (one int for all, or one per question), when known: a run
        without pad_latent_to_max tested a question with fewer steps than the stage with fewer thoughts; None
        gives every question the stage's thoughts."""
    from coconut.config import DecodeConfig
    from coconut.engine.alignment import prompts_until_start

    questions = _check_questions(questions)
    steps = _steps_per_question(steps, len(questions))
    if batch_size < 1:
        raise ValueError(f"answer: batch_size must be >= 1, got {batch_size}")
    try:
        decode = DecodeConfig(**fmt.decode)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"coconut.json: prompt.decode {fmt.decode}: {err}") from err
    marker = tokenizer(fmt.answer_marker.strip(), add_special_tokens=False)["input_ids"]
    # As evaluation: soft decoders leave their continuous phase at the marker or EOS, and a cold stop writes it.
    leave_ids, answer_ids = tuple(marker[:1]) + (engine.eos_id,), tuple(marker)
    device = next(engine.parameters()).device
    was_training = engine.training
    engine.eval()
    out = []
    try:
        for first in range(0, len(questions), batch_size):
            prompts = [fmt.prompt_ids(tokenizer, q, n) for q, n in zip(questions[first:first + batch_size],
                                                                       steps[first:first + batch_size])]
            width = max(len(p) for p in prompts)  # padded on the left, as evaluation's prompts
            ids = torch.tensor([[engine.pad_id] * (width - len(p)) + p for p in prompts], device=device)
            mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=device)
            if fmt.learned_stop:
                ids, mask = prompts_until_start(ids, mask, engine.start_id, engine.pad_id)
            gen = engine.generate(ids, mask, max_new_tokens=max_new_tokens or fmt.max_new_tokens, decode=decode,
                                  learned_stop=fmt.learned_stop, max_thoughts=fmt.max_thoughts,
                                  stop_threshold=fmt.stop_threshold, leave_ids=leave_ids, answer_ids=answer_ids)
            texts = tokenizer.batch_decode([seq[:n].tolist() for seq, n in zip(gen.sequences, gen.num_generated)],
                                           skip_special_tokens=True)
            language = gen.language_tokens(engine.eos_id)
            out += [Answer(fmt.read_answer(t), t, int(n), int(k)) for t, n, k in zip(texts, language, gen.num_thoughts)]
    finally:
        engine.train(was_training)
    return out


def ask(engine, questions, **options):
    """`engine.answer(...)`: the engine's recorded prompt format and its folder's tokenizer (loaded once)."""
    from coconut.engine.export import SETTINGS_FILE

    folder = engine.exported_from
    if engine.prompt_format is None:
        if folder is None:
            raise ConfigError("answer() needs the prompt format an export records: load the model with "
                              "LatentReasoner.from_pretrained(folder), or set engine.prompt_format and "
                              "engine.tokenizer yourself")
        PromptFormat.from_dict(None, folder / SETTINGS_FILE)  # raises: the file records none
    answers = answer_questions(engine, tokenizer_of(engine), engine.prompt_format, questions, **options)
    return answers[0] if isinstance(questions, str) else answers


def tokenizer_of(engine):
    """The engine's tokenizer: the one set, else its export folder's (loaded once)."""
    if engine.tokenizer is None:
        engine.tokenizer = _load_tokenizer(engine.exported_from)
    return engine.tokenizer


def _load_tokenizer(folder):
    if folder is None:
        raise ConfigError("answer() needs a tokenizer: set engine.tokenizer, or load the model with "
                          "LatentReasoner.from_pretrained(folder) from a folder saved with its tokenizer")
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(folder)
    except (OSError, ValueError) as err:
        raise ConfigError(f"{folder}: no tokenizer transformers can read ({err.__class__.__name__}); the model was "
                          "saved without one: save it with save_pretrained(folder, tokenizer)") from err
