"""Builds the bench's inputs: the random model of the bench's shape, its latent engine, and the batch.

`coconut.bench.run` and every rank of `coconut.bench.fsdp` build from here, so both measure the same model on
the same tokens.
"""

from __future__ import annotations

import torch

from coconut.bench.settings import BenchConfig
from coconut.engine.loss import IGNORE_INDEX
from coconut.engine.models import tiny_causal_lm
from coconut.engine.reasoner import LatentReasoner

# Special ids at the top of the vocabulary; everything below is ordinary text.
START_OFFSET, LATENT_OFFSET, END_OFFSET = 3, 2, 1


def build_model(cfg: BenchConfig):
    """A random model of the benchmark's shape."""
    torch.manual_seed(cfg.seed)
    length = cfg.question + cfg.thoughts + 2 + cfg.after + 8
    if cfg.arch not in ("gpt2", "llama"):
        raise ValueError(f"bench: unknown arch {cfg.arch!r} (expected gpt2 or llama)")
    return tiny_causal_lm(cfg.arch, vocab_size=cfg.vocab, layers=cfg.layers, hidden=cfg.width, heads=cfg.heads,
                          max_positions=max(1024, length), eos_id=0)


def build_batch(cfg: BenchConfig):
    """question <bot> <latent>*n <eot> answer, labels on the answer; and the same length in plain text."""
    g = torch.Generator().manual_seed(cfg.seed)
    v = cfg.vocab
    question = torch.randint(1, v - 3, (cfg.batch, cfg.question), generator=g)
    answer = torch.randint(1, v - 3, (cfg.batch, cfg.after), generator=g)
    marks = torch.tensor([v - START_OFFSET] + [v - LATENT_OFFSET] * cfg.thoughts + [v - END_OFFSET])
    latent_ids = torch.cat([question, marks.expand(cfg.batch, -1), answer], dim=1)
    labels = torch.full_like(latent_ids, IGNORE_INDEX)
    labels[:, -cfg.after :] = answer
    plain_ids = latent_ids.clone()
    plain_ids[:, cfg.question : cfg.question + len(marks)] = torch.randint(1, v - 3, (len(marks),), generator=g)
    prompts = latent_ids[:, : cfg.question + len(marks)]
    return latent_ids, plain_ids, labels, prompts


def make_engine(model, cfg: BenchConfig, jacobi_iterations: int | None = None) -> LatentReasoner:
    v = cfg.vocab
    return LatentReasoner(model, latent_id=v - LATENT_OFFSET, start_id=v - START_OFFSET, end_id=v - END_OFFSET, eos_id=0,
                          jacobi_iterations=jacobi_iterations)
