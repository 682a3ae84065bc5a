"""Where a run's records come from: files or a generator, tokenizer, text format, batch sizes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from coconut.config.checks import require
from coconut.config.split_files import split_file
from coconut.methods import TEXT_FORMATS

# The most records a generator makes in one go: they are held in memory before being written (about 1 KB each),
# and the paper's largest set (ProsQA train) has 17,886.
MAX_GENERATED = 10_000_000


TEXT_FORMAT_NAMES = tuple(TEXT_FORMATS)  # the shared formats and the methods' own

@dataclass
class DataConfig:
    """Record files, or a generator that writes them when they are missing."""

    generator: Optional[str] = "prosqa-mini"  # prosqa | prosqa-mini | prosqa-deep | prontoqa | None (files must exist)
    allow_generated: bool = True  # false: missing files are an error, not generated (the Table 1 data sets)
    train_file: Optional[str] = None  # default: <data_dir>/train.json or a release's name (docs/data.md)
    val_file: Optional[str] = None
    test_file: Optional[str] = None
    # A ProsQA generator's rendering: words (the released text), compact (one token per name and symbol) or
    # phrase (compact question, steps as short sentences: the demo's); null = the generator's own.
    render: Optional[str] = None
    depth: Optional[int] = None  # prosqa-deep: edges from the subject to the answer; null = the generator's own (4)
    # prosqa, prosqa-mini: the wrong option, any leaf of the other person (null or "any") or
    # "matched": as deep below its person as the answer, with as many parents (no one-glance rule tells them apart).
    distractor: Optional[str] = None
    data_dir: str = "data/${data.generator}"
    train_size: int = 20000
    val_size: int = 500
    test_size: int = 500
    seed: int = 0
    tokenizer: str = "word"  # word (built from the data) | model (the pretrained model's) | a hub id or path
    # How records become text: "compact" (one word-level token per symbol, answer after "=") or
    # "paper" (question\n, step\n, "### answer", as the paper formats GPT-2 inputs).
    text_format: str = "compact"
    batch_size: int = 32
    eval_batch_size: int = 64
    # A training split that does not fill its last batch: false trains that partial batch and steps the optimizer on
    # the epoch's last (partial) accumulation group, as the release does; under DDP the ranks' shares are then
    # evened out by repeating the first samples of the epoch's order (the release's DistributedSampler).
    # true drops the partial batch (and, under DDP, the samples that do not divide over the ranks).
    drop_last: bool = False
    # Training batches of similar length (coconut.data.length_batches): the epoch's shuffled samples are sorted by
    # length within pools of 64 batches and the batches shuffled, so little of a batch is padding. Every sample is
    # still trained once an epoch; false shuffles and batches as the release does. Methods whose samples follow
    # the batch (iCoT) keep their own order.
    batch_by_length: bool = False
    num_workers: int = 0
    max_length: Optional[int] = None  # default: the model's context
    drop_too_long: bool = False

    def __post_init__(self):
        require(self.generator in (None, "prosqa", "prosqa-mini", "prosqa-deep", "prontoqa"),
                 f"data.generator must be prosqa, prosqa-mini, prosqa-deep, prontoqa or null, got {self.generator!r}")
        require(self.render in (None, "words", "compact", "phrase"),
                 f"data.render must be words, compact, phrase or null, got {self.render!r}")
        require(self.render is None or self.generator in ("prosqa", "prosqa-mini", "prosqa-deep"),
                 f"data.render={self.render} applies to the ProsQA generators, not "
                 f"{self.generator}")
        require(self.depth is None or (self.generator == "prosqa-deep" and 1 <= self.depth <= 7),
                 f"data.depth={self.depth} applies to generator prosqa-deep, from 1 to 7 edges")
        require(self.distractor is None or (self.generator in ("prosqa", "prosqa-mini")
                                            and self.distractor in ("any", "matched")),
                 f"data.distractor={self.distractor} must be any or matched, for generator prosqa or prosqa-mini")
        require(self.generator is not None or self.train_file is not None,
                 "data.train_file is required when data.generator is null")
        require(self.text_format in TEXT_FORMAT_NAMES,
                 f"data.text_format must be one of {', '.join(TEXT_FORMAT_NAMES)}, got {self.text_format!r}")
        require(self.batch_size >= 1 and self.eval_batch_size >= 1,
                 "data.batch_size and data.eval_batch_size must be >= 1")
        for split, size in self.sizes().items():
            require(1 <= size <= MAX_GENERATED, f"data.{split}_size must be in [1, {MAX_GENERATED:,}] (records a "
                                                f"generator makes, held in memory), got {size:,}")
        require(self.num_workers >= 0, f"data.num_workers must be >= 0, got {self.num_workers}")
        require(self.max_length is None or self.max_length >= 1,
                 f"data.max_length must be >= 1 or null, got {self.max_length}")
        require(bool(str(self.data_dir).strip()), "data.data_dir must not be empty (it is a folder)")

    def files(self) -> dict[str, Path]:
        """The split files: the ones named, else found under our or the releases' names in data_dir or, when
        only train_file is named, beside it (a data_dir holding another data set's test.json must not be
        tested on)."""
        named = {"train": self.train_file, "val": self.val_file, "test": self.test_file}
        folder = Path(self.train_file).parent if self.train_file else Path(self.data_dir)
        return {split: Path(path) if path else split_file(folder, split) for split, path in named.items()}

    def sizes(self) -> dict[str, int]:
        return {"train": self.train_size, "val": self.val_size, "test": self.test_size}
