"""How a question becomes the prompt an exported model was tested on, and how its answer is read back.

The export records it in `coconut.json` (its "prompt" object), so that `LatentReasoner.answer` asks a question
exactly as the run's own test did: the question written by `question_template`, then the thought block of the
tested stage, then greedy decoding (or the run's decoder) up to `max_new_tokens`, the answer read after the
answer marker by the run's scoring rule.

The engine does not import the data code, so the block and the reading are re-expressed here from the
recorded settings alone: the prompt of `coconut.data.curriculum.build_sample` (and `icot_sample`) and
`coconut.data.scoring.extract_answer`. tests/engine/test_prompt_format.py checks that both agree with the data
pipeline for every method, stage, step count and stage-0 form.
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields

from coconut.config.checks import ConfigError
from coconut.markers import END_LATENT, LATENT, PAUSE, START_LATENT
from coconut.methods import METHODS, method

QUESTION = "{question}"  # where the question's text goes in question_template
KNOWN_METHODS = tuple(METHODS)


def _option_defaults(name: str) -> dict:
    """The settings method `name` reads to build its prompt, with their defaults ({} for an unknown method)."""
    if name not in METHODS:
        return {}
    return {f.name: (f.default_factory() if f.default_factory is not MISSING else f.default)
            for group in METHODS[name].options if not getattr(group, "TRAINING_ONLY", False) for f in fields(group)}


def default_special_tokens() -> dict:
    return {"start": START_LATENT, "latent": LATENT, "end": END_LATENT, "pause": PAUSE}


def default_decode() -> dict:
    return {"name": "greedy"}


@dataclass
class PromptFormat:
    """The prompt and the reading of the answer, as the run evaluated the exported checkpoint."""

    method: str  # the training method: which thought block the prompt ends with
    stage: int  # the curriculum stage the exported checkpoint was tested at (results.json's test_stage)
    question_template: str  # the question's text replaces "{question}"; the tokenizer adds its own BOS
    answer_marker: str  # the text before the answer ("### ", "= ")
    max_new_tokens: int  # generated tokens at most
    scoring: str  # "release" (text after the marker's last character) or "lenient" (after the full marker)
    # The method's own settings (the fields of its option groups, coconut.methods.Method.options), read as
    # attributes (`fmt.thoughts_per_step`); a field absent here has its default. Flat in coconut.json.
    options: dict = field(default_factory=dict)
    learned_stop: bool = False  # the stop head decides the thoughts (the prompt ends at <|start-latent|>)
    max_thoughts: int = 0  # the most a learned stop may take
    stop_threshold: float = 0.5
    decode: dict = field(default_factory=default_decode)  # coconut.config.DecodeConfig's fields
    special_tokens: dict = field(default_factory=default_special_tokens)  # the marker tokens' strings

    REQUIRED = ("method", "stage", "question_template", "answer_marker", "max_new_tokens", "scoring")

    def __post_init__(self):
        if self.method not in KNOWN_METHODS:
            raise ConfigError(f"prompt.method {self.method!r}: unknown method; expected one of "
                              f"{', '.join(KNOWN_METHODS)}")
        if QUESTION not in self.question_template:
            raise ConfigError(f"prompt.question_template {self.question_template!r} has no {QUESTION} for the question")
        unknown = sorted(set(self.options) - set(_option_defaults(self.method)))
        if unknown:
            raise ConfigError(f"prompt: {', '.join(unknown)} is no setting of method {self.method} (its settings: "
                              f"{', '.join(_option_defaults(self.method)) or 'none'})")

    def __getattr__(self, name: str):
        # Only reached for names that are no attribute: the method's settings, as the method objects read them.
        if name.startswith("__") or name == "options":
            raise AttributeError(name)
        if name in self.options:
            return self.options[name]
        defaults = _option_defaults(self.method)
        if name in defaults:
            return defaults[name]
        raise AttributeError(f"{type(self).__name__} of method {self.method} has no {name!r}")

    # -- coconut.json ----------------------------------------------------------------------------

    def to_dict(self) -> dict:
        """The "prompt" object of coconut.json: the method's settings flat beside the rest (every one, defaults
        included); `thoughts` is written for readers (it follows from the rest)."""
        out = asdict(self)
        out.pop("options")
        return {**out, **_option_defaults(self.method), **self.options, "thoughts": self.thoughts}

    @classmethod
    def from_dict(cls, data: dict | None, where) -> "PromptFormat":
        """From coconut.json's "prompt" object; `where` (the file) names it in the errors."""
        if not data:
            raise ConfigError(
                f"{where}: records no prompt format (no \"prompt\" object: it was exported by an earlier coconut), so "
                f"answer() cannot build the model's prompt; add the object with the run's {', '.join(cls.REQUIRED)} "
                "(docs/engine.md, 'Ask an exported model'), or build the prompt yourself and call generate()")
        missing = [name for name in cls.REQUIRED if name not in data]
        if missing:
            raise ConfigError(f"{where}: the \"prompt\" object lacks {', '.join(missing)}; answer() needs them to "
                              "build the prompt the model was tested on (docs/engine.md, 'Ask an exported model')")
        own = _option_defaults(data["method"]) if data["method"] in KNOWN_METHODS else {}
        missing = [name for name in own if name not in data]
        if missing:
            raise ConfigError(f"{where}: the \"prompt\" object lacks {', '.join(missing)}, settings of method "
                              f"{data['method']} that answer() needs to build the prompt the model was tested on")
        known = {f.name for f in fields(cls)} - {"options"}
        return cls(**{k: v for k, v in data.items() if k in known}, options={k: data[k] for k in own})

    # -- the prompt -------------------------------------------------------------------------------

    def question_text(self, question: str) -> str:
        return self.question_template.replace(QUESTION, question)

    def block(self, num_steps: int | None = None) -> list[str]:
        """The special tokens after the question (their strings), as evaluation's prompt ends: the method's own
        block at the tested stage (the one the data pipeline builds, coconut.methods).

        num_steps: the question's reasoning steps, when known (a question of the data set); None: at least
        the stage's (no_curriculum: the final stage's), as a new question is taken to have (with
        pad_latent_to_max, the count does not matter)."""
        m = method(self.method)
        stage = m.sample_stage(self, self.stage, num_steps or 0)
        _, kinds = m.block(self, stage, max(stage, 1) if num_steps is None else num_steps)
        return [self.special_tokens[kind] for kind in kinds]

    @property
    def thoughts(self) -> int:
        """Continuous thoughts in the prompt of a question with at least the stage's steps (a learned stop decides
        its own, up to max_thoughts)."""
        return self.block().count(self.special_tokens["latent"])

    def prompt_ids(self, tokenizer, question: str, num_steps: int | None = None) -> list[int]:
        """The token ids of the prompt: the question with the tokenizer's special tokens (its BOS), then the block."""
        ids = tokenizer(self.question_text(question), add_special_tokens=True)["input_ids"]
        block = self.block(num_steps)
        found = tokenizer.convert_tokens_to_ids(block)
        unknown = sorted({t for t, i in zip(block, found) if i is None or i == tokenizer.unk_token_id})
        if unknown:
            raise ConfigError(f"the tokenizer lacks {', '.join(unknown)}, which the prompt of method {self.method} "
                              "needs; load the tokenizer saved with the model")
        return ids + found

    # -- the answer -------------------------------------------------------------------------------

    def read_answer(self, text: str) -> str | None:
        """The answer in a generation under the scoring rule, stripped; None when the marker is missing.

        "release": what follows the last occurrence of the marker's last character (`#` of "### "); "lenient":
        what follows the last full marker. (Scoring also ignores commas under "release" and inner whitespace
        under "lenient" when it compares with the gold answer.)"""
        marker = self.answer_marker.strip()
        if self.scoring == "release":
            marker = marker[-1:]
        if not marker or marker not in text:
            return None
        return text.rsplit(marker, 1)[1].strip()
