"""What a method is: one object that answers every question the framework asks about it.

A method says how a record becomes a sample at a stage (which language steps it removes and which special tokens
follow the question), its final stage, the tokens the model embeds, the config fields it reads, and its Table 1
label. Nothing outside coconut.methods compares a method's name: the data pipeline, the engine's prompt format, the
config and the trainer ask the registered object. Torch-free and data-free: the config layer can import it.

`cfg` below is anything with the method fields it reads (coconut.config.MethodConfig, or the prompt format an
export records: the same names).
"""

from __future__ import annotations

import dataclasses
import importlib

# Special tokens of a block, by kind: the data pipeline maps them to ids, the prompt format to strings.
START, THOUGHT, END, PAUSE = "start", "latent", "end", "pause"


class Method:
    name: str = ""
    label: str = ""  # the row of the paper's Table 1
    table1: bool = True  # a row of COCONUT's Table 1 (`coconut table` trains these); the methods that followed are not
    description: str = ""
    # New tokens the model embeds: "latent" (the three markers), "pause" (<|pause|>) or None. The release adds
    # no embeddings for CoT, No-CoT and w/o thought (their vocabulary stays GPT-2's 50257).
    embeds: str | None = None
    stepwise: bool = False  # its samples change stage by stage, replacing one more language step each time
    # The method config fields it reads besides `name`, as dataclasses (one per group of fields, with their defaults
    # and comments; methods may share a group). `method.*` in a config is `name` and the union of every registered
    # method's groups (coconut.config.MethodConfig). A group may check its fields with a static `problems(cfg)`,
    # hide them from the shown config with a static `shown(cfg)`, and keep them out of the exported prompt with
    # `TRAINING_ONLY = True`.
    options: tuple[type, ...] = ()
    text_formats: dict = {}  # text formats it brings, by `data.text_format` name (coconut.text_format.TextFormat)
    # Its published figures: {data set: (accuracy %, mean generated tokens or None)}, shown beside a run's by
    # `coconut report`.
    paper: dict = {}
    shows_latent_config: bool = False  # the `latent` config section applies to it
    thoughts_per_removed_step: bool = False  # it puts c thoughts (or pauses) per removed step: c must be >= 1
    # How `coconut eval` reads a checkpoint of the method's own release (model.release_checkpoint): "module:function"
    # taking the run config and the base tokenizer and returning the engine; None: it has no release to read.
    release_checkpoint: str | None = None
    release_example: str = ""  # `coconut eval` arguments reading one, for the help ("EXPERIMENT model.release_...=ID")
    batch_dependent: bool = False  # its samples follow the batch within an epoch, not only the stage (iCoT)
    # The training loss, "module:function" (it takes the engine, the batch and the method config, and returns a
    # dict of named terms with the total under "loss", and the latent forward's last hidden states under "hidden"
    # for the losses added to it); None: the language-model loss of the latent forward.
    loss: str | None = None

    @property
    def latent_passes(self) -> bool:
        """Its steps feed back continuous thoughts: one decoder call per thought column, not one per step."""
        return self.embeds == "latent"

    @property
    def fields(self) -> tuple[str, ...]:
        """The method config fields it reads besides `name` (the others are not shown)."""
        return tuple(f.name for group in self.options for f in dataclasses.fields(group))

    def used_fields(self, cfg=None) -> tuple[str, ...]:
        """`name` and its fields; with `cfg`, without those of groups that hide themselves (`shown`)."""
        groups = [g for g in self.options if cfg is None or getattr(g, "shown", lambda c: True)(cfg)]
        return ("name",) + tuple(f.name for group in groups for f in dataclasses.fields(group))

    @property
    def prompt_fields(self) -> tuple[str, ...]:
        """The fields the exported model's prompt format records (those of groups not only for training)."""
        return tuple(f.name for group in self.options if not getattr(group, "TRAINING_ONLY", False)
                     for f in dataclasses.fields(group))

    def final_stage(self, cfg, last_stage: int) -> int:
        """The stage from which the samples no longer change (0 without a curriculum); `last_stage`: the
        trainer's last scheduled stage, for methods whose training decides it."""
        return 0

    def settled_stage(self, cfg, final: int, step_counts) -> int:
        """The first stage whose samples are the final stage's for records with these numbers of steps: a
        curriculum over questions of at most k steps removes every step, and may pad every sample to its thoughts,
        before its final stage."""
        counts = set(step_counts)
        return next(s for s in range(final + 1)
                    if all(self.block(cfg, s, n) == self.block(cfg, final, n) for n in counts))

    def sample_stage(self, cfg, stage: int, num_steps: int, rng=None) -> int:
        """The stage a sample is built at: `stage`, unless the method trains others too (`rng` drives the random
        choice during training; None for evaluation and prompts, which are deterministic)."""
        return stage

    def block(self, cfg, stage: int, num_steps: int) -> tuple[int, list[str]]:
        """(language steps removed from the front, the special tokens after the question, by kind) for a record
        with `num_steps` steps at `stage` (as `sample_stage` returned it)."""
        return 0, []

    def final_thoughts(self, cfg) -> int:
        """Continuous thoughts in a sample of the final stage, for a question with steps enough."""
        stage = self.sample_stage(cfg, self.final_stage(cfg, last_stage=0), num_steps=0)
        _, kinds = self.block(cfg, stage, num_steps=max(stage, 1))
        return kinds.count(THOUGHT)

    def longest_sample(self, cfg, question: int, steps: int, answer: int) -> int:
        """An upper bound on a sample's length at any stage, from the record's token counts (its question, all its
        steps, its answer); EOS counts too."""
        return question + steps + answer + 1

    def teacher(self, cfg, question: list[int], steps: list[list[int]], answer: list[int], answer_start: int,
                eos: int) -> dict | None:
        """A second sequence trained beside the sample (CODI's teacher), or None."""
        return None

    def step_plan(self, cfg, steps: list[list[int]], step_ends: list[int] | None, removed: int, thoughts: int,
                  rest: list[int]) -> tuple[list[list[int]], list[list[int]]] | None:
        """Step supervision (coconut.methods.step_supervision): for a sample with `thoughts` continuous thoughts
        whose first `removed` language steps (`steps`, each `step_ends[k]` long without its newline) were removed and
        `rest` follows its end marker, (per supervised thought the thought vectors it reads, as indices: j <
        `thoughts` the j-th thought's input, `thoughts` the state after the last; its step's ids, [] for none).
        None: the method has no thoughts to supervise."""
        return None

    def trains_on(self, cfg, answer: str, tokens: int) -> bool:
        """Whether a training record (its answer text, its question + steps + answer token count) is trained on."""
        return True

    def check(self, cfg) -> list[str]:
        """What is wrong with `cfg` for this method, as messages (empty: nothing)."""
        if getattr(cfg, "step_supervision", False) and not self.supervises_steps:
            from coconut.methods import METHODS

            return [f"method.step_supervision: method {self.name} has no continuous thoughts to supervise; it "
                    f"applies to {', '.join(n for n, m in METHODS.items() if m.supervises_steps)}"]
        return []

    @property
    def supervises_steps(self) -> bool:
        """Its thoughts can be supervised by the steps they replace (it reads the step supervision options)."""
        from coconut.methods.step_supervision import StepSupervisionOptions

        return StepSupervisionOptions in self.options

    def run_problems(self, run) -> list[str]:
        """What is wrong with the whole run config `run` (coconut.config.RunConfig) for this method, across its
        sections (the method's own fields are `check`ed)."""
        return []

    def __repr__(self) -> str:
        return f"<method {self.name}: {self.label}>"


def entry_point(path: str | None):
    """The function a "module:function" path names (a method's loss or release reader); None stays None."""
    if path is None:
        return None
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)
