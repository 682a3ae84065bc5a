"""The benchmark's settings, kept free of torch so `coconut bench --help` is instant.

Every option is checked when the command line is parsed (a choice, a range, and the shape's cross-checks in
`check_bench_args`), so a setting that cannot run is one line and exit 2, before any model is built.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import asdict, dataclass

from coconut.config import SEED_RANGE


@dataclass
class BenchConfig:
    """Shape of the benchmark; the defaults are the reference shape of docs/bench.md."""

    arch: str = "gpt2"  # gpt2 or llama (random weights)
    layers: int = 4
    width: int = 256
    heads: int = 4
    vocab: int = 50257  # GPT-2's vocabulary
    batch: int = 32
    question: int = 96  # question tokens before <|start-latent|>
    thoughts: int = 6
    after: int = 32  # tokens after <|end-latent|>, and tokens generated
    repeats: int = 7  # timed rounds of plain, latent and same-calls training steps, and of the two generations
    generate_questions: int = 32
    seed: int = 0
    device: str = "cpu"  # cpu | cuda
    precision: str = "fp32"  # fp32 | bf16 (autocast, as trainer.precision=bf16-mixed)
    jacobi_iterations: int = 0  # > 0: also time thoughts computed by this many Jacobi iterations (PCCoT)
    fsdp_ranks: int = 0  # >= 2: also count FSDP all-gathers per step over this many CPU processes (gloo)
    compile: str = "none"  # a torch.compile mode: also time latent steps with compiled passes (latent.compile)


# The three latent markers sit at the top of the vocabulary and ordinary tokens are drawn from [1, vocab - 3):
# at least two of those leaves 5.
MIN_VOCAB = 5
CHOICES = {"arch": ("gpt2", "llama"), "device": ("cpu", "cuda"), "precision": ("fp32", "bf16"),
           "compile": ("none", "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")}
# --fsdp-ranks starts one process per rank on this machine, each building the whole model before sharding it.
MAX_FSDP_RANKS = 64
# name: (least value, help); the most, where there is one, in MOST
HELP = {
    "arch": (None, "architecture of the random model"),
    "layers": (1, "transformer layers"),
    "width": (1, "hidden size (a multiple of --heads)"),
    "heads": (1, "attention heads"),
    "vocab": (MIN_VOCAB, "vocabulary size, the three latent markers included"),
    "batch": (1, "sequences per training step and per batched generation"),
    "question": (1, "question tokens before <|start-latent|>"),
    "thoughts": (1, "continuous thoughts per sequence"),
    "after": (1, "answer tokens after <|end-latent|>, and tokens generated"),
    "repeats": (1, "timed rounds of (plain, latent, same decoder calls) training steps and of (latent, HF) "
                  "generation; the medians are reported"),
    "generate_questions": (1, "questions generated batched and one by one (at most --batch of them)"),
    "seed": (SEED_RANGE[0], "random seed of the model and the batch"),
    "device": (None, "where to run (cuda needs a visible GPU)"),
    "precision": (None, "fp32, or bf16 autocast (as trainer.precision=bf16-mixed)"),
    "jacobi_iterations": (0, "> 0: also time thoughts computed by this many Jacobi iterations (PCCoT)"),
    "fsdp_ranks": (0, f"2 to {MAX_FSDP_RANKS}: also count FSDP all-gathers per training step, plain and latent, over this many CPU "
                      "processes (gloo), as trainer=fsdp wraps the model"),
    "compile": (None, "also time latent steps whose passes run through torch.compile in this mode (latent.compile), "
                      "paired with eager ones"),
}
MOST = {"seed": (SEED_RANGE[1], " (torch and numpy take unsigned 32-bit seeds)"),
        "fsdp_ranks": (MAX_FSDP_RANKS, " (each rank is a process on this machine holding the whole model)")}


def at_least(least: int, most: int | None = None, why_most: str = ""):
    """An argparse type: an integer in [least, most], refused at parse time with the reason (also used by
    `coconut data`)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"must be >= {least}, got {value}")
        if most is not None and value > most:
            raise argparse.ArgumentTypeError(f"must be at most {most:,}{why_most}, got {value:,}")
        return value
    parse.__name__ = "int"  # argparse names the type in its messages
    return parse


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    for name, value in asdict(BenchConfig()).items():
        least, text = HELP[name]
        kind = at_least(least, *MOST.get(name, ())) if least is not None else type(value)
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, default=value, choices=CHOICES.get(name),
                            metavar="|".join(CHOICES[name]) if name in CHOICES else type(value).__name__.upper(),
                            help=f"{text} (default: {value})")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")


def check_bench_args(args: argparse.Namespace) -> str | None:
    """What makes the shape impossible (None when it can run); the parser reports it as a usage error."""
    if args.width % args.heads:
        return f"--width {args.width} is not a multiple of --heads {args.heads} (each head gets width / heads)"
    if args.fsdp_ranks == 1:
        return "--fsdp-ranks 1: FSDP over one process shards nothing; use 2 or more (0 skips the FSDP figures)"
    return memory_problem(args)


def least_bytes(args: argparse.Namespace) -> tuple[int, int]:
    """(parameters, bytes) the benchmark needs at the least: fp32 weights, gradients and AdamW's two moments of
    the embedding table and the layers' attention and MLP matrices, and the fp32 logits of the batch with their
    gradient. The real peak is higher (activations, the plain model's step, generation): this only refuses a shape
    that cannot be allocated at all."""
    parameters = args.vocab * args.width + args.layers * 12 * args.width**2  # 4 w^2 attention + 2 x 4 w^2 MLP
    tokens = args.batch * (args.question + args.thoughts + 2 + args.after)
    needed = 16 * parameters + 8 * tokens * args.vocab
    if args.fsdp_ranks:  # every rank builds the whole model before FSDP shards it
        needed = max(needed, args.fsdp_ranks * 4 * parameters)
    return parameters, needed


def device_memory(device: str) -> int | None:
    """Bytes of memory on the benchmark's device: the machine's RAM, or the first CUDA GPU's (None: unknown)."""
    if device == "cuda":
        import torch  # only here: a CUDA benchmark loads it at once anyway

        return torch.cuda.get_device_properties(0).total_memory if torch.cuda.is_available() else None
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows)
        return None


def memory_problem(args: argparse.Namespace) -> str | None:
    """A shape whose least memory (least_bytes) exceeds the device's, named by its sizes; None when it may fit."""
    parameters, needed = least_bytes(args)
    available = device_memory(args.device)
    if available is None or needed <= available:
        return None
    gib = 2**30
    ranks = f" --fsdp-ranks {args.fsdp_ranks:,}" if args.fsdp_ranks else ""
    return (f"--vocab {args.vocab:,} --width {args.width:,} --layers {args.layers:,} --batch {args.batch:,} (a "
            f"sequence of {args.question + args.thoughts + 2 + args.after:,} tokens){ranks} need at least "
            f"{needed / gib:,.1f} GiB ({parameters:,} parameters with their gradients and AdamW state, and the "
            f"logits), more than the {available / gib:,.1f} GiB of {args.device} memory here; lower --vocab, "
            f"--width, --layers, --batch or the sequence (--question, --thoughts, --after)")


def bench_config_from_args(args: argparse.Namespace) -> BenchConfig:
    return BenchConfig(**{name: getattr(args, name) for name in asdict(BenchConfig())})
