"""`coconut think RUN_DIR ["QUESTION"]`: what each continuous thought of a trained run reads as, then its answer.

The model is the run's export (`RUN_DIR/export`, the checkpoint the run tested); the text format, the
stage-0 form and the scoring rule come from the run's `config.yaml`. A question found in the run's data
(test, then val, then train split) is scored against its answer; without QUESTION, test question --index.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from coconut.config import ConfigError


def add_think_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a finished run folder (it holds config.yaml and export/)")
    parser.add_argument("question", metavar="QUESTION", nargs="?", default=None,
                        help="the question text, as the data writes it (default: a test question, see --index)")
    parser.add_argument("--index", type=int, default=0, help="which test question when QUESTION is not given (default 0)")
    parser.add_argument("--thoughts", type=int, default=None,
                        help="continuous thoughts before the answer (default: the run's final stage, max_latent_stage x c; "
                             "at most what the model's positions leave beside the question and the answer)")
    parser.add_argument("--top", type=int, default=5, help="tokens shown per thought (default 5)")


def check_think_args(args) -> str | None:
    """A usage problem of the arguments, or None (checked before anything loads)."""
    for key, least in (("index", 0), ("thoughts", 0), ("top", 1)):
        value = getattr(args, key)
        if value is not None and value < least:
            return f"--{key} {value}: must be >= {least}"
    return None


def check_room(positions: int | None, question: int, thoughts: int | None, max_new_tokens: int, what: str) -> None:
    """The question, `<|start-latent|>`, the thoughts, `<|end-latent|>` and the answer's new tokens fit the model's
    positions (beyond them a learned position table fails, and rotary positions read what training never saw).
    thoughts=None: a method without latent markers; `what` names the thoughts in the message."""
    if positions is None:  # the model's config names no limit
        return
    markers = 0 if thoughts is None else 2
    most = positions - question - markers - max_new_tokens  # thoughts that fit
    if thoughts and thoughts > most:
        room = f"--thoughts is at most {most}" if most >= 1 else "no thought fits: ask a shorter question"
        raise ConfigError(f"{what}: the model has {positions} positions, the question takes {question}, the latent "
                          f"markers 2 and the answer up to {max_new_tokens} (eval.max_new_tokens); {room}")
    if most < 0:
        raise ConfigError(f"QUESTION takes {question} positions{' and the latent markers 2' if markers else ''}, the "
                          f"answer up to {max_new_tokens} (eval.max_new_tokens): more than the model's {positions}; "
                          "ask a shorter question")


def find_record(cfg, question: str | None, index: int) -> tuple[str, dict | None]:
    """(question text, its record when the run's data holds it)."""
    from coconut.data.records import load_records

    files = cfg.data.files()
    if question is None:
        path = files["test"] if files["test"].exists() else files["val"]
        if not path.exists():
            raise ConfigError(f"{path}: no such file; give the QUESTION text instead")
        records = load_records(path)
        if index >= len(records):
            raise ConfigError(f"--index {index}: {path} holds {len(records)} questions (0 to {len(records) - 1})")
        return records[index]["question"], records[index]
    wanted = " ".join(question.split())
    for split in ("test", "val", "train"):
        if files[split].exists():
            for record in load_records(files[split]):
                if " ".join(record["question"].split()) == wanted:
                    return record["question"], record
    return question, None


def think(run_dir, question: str | None = None, index: int = 0, thoughts: int | None = None, top: int = 5):
    """The reading of one question by a finished run (see coconut.analysis.thoughts)."""
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    from coconut.analysis.thoughts import read_thoughts
    from coconut.data.tokenize import TEXT_FORMATS
    from coconut.engine.models import context_length
    from coconut.engine.reasoner import LatentReasoner
    from coconut.experiment import load_config
    from coconut.methods import METHODS
    from coconut.methods.base import PAUSE
    from coconut.run_dir import RunDir

    run = RunDir(Path(run_dir))
    if not run.config.exists():
        raise ConfigError(f"{run.config}: no such file; RUN_DIR must be a run folder written by coconut train")
    if not (run.export / "coconut.json").exists():
        raise ConfigError(f"{run.export}: no exported model; the run has not finished (its test writes export/)")
    cfg = load_config(str(run.config))
    embeds = METHODS[cfg.method.name].embeds  # checked before anything loads
    if embeds == PAUSE:
        raise ConfigError(f"{run_dir}: the run trained method {cfg.method.name}, whose thoughts are <|pause|> tokens, "
                          "not continuous thoughts: nothing to read")
    if embeds is None and thoughts:
        raise ConfigError(f"--thoughts {thoughts}: the run trained method {cfg.method.name}, which has no continuous "
                          "thoughts")
    # No latent markers for a method without them (the question alone, as it evaluates); else the final stage's.
    k = None if embeds is None else thoughts if thoughts is not None else cfg.method.max_thoughts
    fmt = TEXT_FORMATS[cfg.data.text_format]
    text, record = find_record(cfg, question, index)
    hf_logging.disable_progress_bar()  # one small model: its loading bar would only push the reading up the screen
    engine = LatentReasoner.from_pretrained(run.export)
    tokenizer = AutoTokenizer.from_pretrained(run.export)
    question_ids = tokenizer(text + fmt.question_suffix, add_special_tokens=True)["input_ids"]  # as read_thoughts does
    check_room(context_length(engine.model), len(question_ids), k, cfg.eval.max_new_tokens,
               f"--thoughts {k}" if thoughts is not None else f"{k} thoughts (the run's final stage)")
    return read_thoughts(engine, tokenizer, text, fmt.question_suffix, fmt.answer_prefix, k, top=top,
                         eot_at_stage0=cfg.method.eot_at_stage0, record=record,
                         max_new_tokens=cfg.eval.max_new_tokens, scoring=cfg.eval.scoring,
                         thoughts_per_step=cfg.method.thoughts_per_step,
                         step_reader=step_reader(run, cfg, engine, tokenizer))


def step_reader(run, cfg, engine, tokenizer):
    """With a run trained under step supervision (its step_decoder/ folder), the reading of each supervised
    thought by the auxiliary decoder: [(thoughts read, 1-based; the step it writes)]; else None."""
    if not (run.step_decoder / "step_decoder.json").exists():
        return None
    import torch

    from coconut.engine.step_decoder import load_step_decoder, read_steps
    from coconut.methods import METHODS

    decoder = load_step_decoder(run.step_decoder)

    def read(states):
        groups, _ = METHODS[cfg.method.name].step_plan(cfg.method, [], None, 0, len(states), [])
        groups = [g for g in groups if max(g) < len(states)]  # the state after the last thought is not read
        if not groups:
            return []
        fed = engine.thought_embedding(states)
        steps = read_steps(decoder, engine, torch.stack([fed[g] for g in groups]), tokenizer.eos_token_id)
        return [([j + 1 for j in g], tokenizer.decode(ids)) for g, ids in zip(groups, steps)]

    return read if cfg.method.step_supervision else None


def main(args) -> int:
    from coconut.analysis.thoughts import format_thinking

    print(format_thinking(think(args.run_dir, args.question, args.index, args.thoughts, args.top)))
    return 0
