"""The benchmark's settings, kept free of torch so `coconut bench --help` is instant."""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass


@dataclass
class BenchConfig:
    """Shape of the benchmark; the defaults are issue 2's reference shape."""

    arch: str = "gpt2"  # gpt2 or llama (random weights)
    layers: int = 4
    width: int = 256
    heads: int = 4
    vocab: int = 50257  # GPT-2's vocabulary
    batch: int = 32
    question: int = 96  # question tokens before <|start-latent|>
    thoughts: int = 6
    after: int = 32  # tokens after <|end-latent|>, and tokens generated
    repeats: int = 7  # timed pairs of (plain, latent) training steps
    generate_questions: int = 32
    seed: int = 0
    device: str = "cpu"  # cpu | cuda
    precision: str = "fp32"  # fp32 | bf16 (autocast, as trainer.precision=bf16-mixed)
    jacobi_iterations: int = 0  # > 0: also time thoughts computed by this many Jacobi iterations (PCCoT)


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    for name, value in asdict(BenchConfig()).items():
        parser.add_argument(
            f"--{name.replace('_', '-')}", type=type(value), default=value, metavar=type(value).__name__.upper(),
            help=f"(default: {value})",
        )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")


def bench_config_from_args(args: argparse.Namespace) -> BenchConfig:
    return BenchConfig(**{name: getattr(args, name) for name in asdict(BenchConfig())})
