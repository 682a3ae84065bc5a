"""Keeping ranks in step when every forward pass is a collective operation (FSDP).

Under FSDP each call of a wrapped decoder layer all-gathers its parameters, so all ranks must make
the same number of decoder calls in the same order. The latent engine's call count depends on the
batch (one pass per thought column, one per generated token), and ranks hold different batches.
With a `RankSync` the engine pads its passes with idle ones up to the most any rank needs, and
generation stops only when every rank's rows are finished.
"""

from __future__ import annotations

from typing import Callable

import torch


class RankSync:
    def __init__(self, reduce_max: Callable[[int], int]):
        self.reduce_max = reduce_max

    @classmethod
    def from_process_group(cls) -> "RankSync":
        """All-reduce over the default process group: CPU tensors for gloo, the rank's GPU for NCCL."""
        import torch.distributed as dist

        def reduce_max(value: int) -> int:
            # Chosen at call time: Lightning calls setup hooks before it moves the model to its device.
            on_gpu = dist.get_backend() == "nccl"
            device = torch.device("cuda", torch.cuda.current_device()) if on_gpu else torch.device("cpu")
            t = torch.tensor([value], dtype=torch.long, device=device)
            dist.all_reduce(t, op=dist.ReduceOp.MAX)
            return int(t.item())

        return cls(reduce_max)

    def most(self, value: int) -> int:
        """The largest `value` over all ranks."""
        return self.reduce_max(int(value))

    def all_done(self, done: bool) -> bool:
        """True on every rank once every rank is done."""
        return self.reduce_max(0 if done else 1) == 0


def idle_passes(decoder, count: int, embeds: torch.Tensor) -> torch.Tensor | None:
    """`count` idle decoder calls, so this rank makes as many as the busiest one.

    Returns a zero tied to their outputs: added to the loss, it makes the backward pass collective too."""
    idle = None
    for _ in range(count):
        out = decoder(inputs_embeds=embeds[:1, :1], use_cache=False).last_hidden_state
        term = out.float().sum() * 0.0
        idle = term if idle is None else idle + term
    return idle
