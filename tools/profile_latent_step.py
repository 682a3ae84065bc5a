"""Where a latent training step spends the time a plain step of the same length does not: torch's profiler over
forward and backward of both (the bench's model and batch, `coconut/bench/builders.py`), per operator, and the
time spent on per-head key/value-shaped tensors (batch, heads, columns, head size): attention, and the cache's
writes and reads with their gradients. `coconut bench` separates what the engine adds from what its decoder calls
cost (train_step_ratio_vs_same_calls).

  python tools/profile_latent_step.py [--vocab 64] [--batch 32] [--threads 1] [--steps 2]

Profiler times carry the profiler's own overhead and vary from run to run by several percent: read the
per-head traffic against the plain step, and `coconut bench` for the step ratio.
"""

import argparse
from collections import Counter

import torch
from torch.profiler import ProfilerActivity, profile

from coconut.bench.builders import build_batch, build_model, make_engine
from coconut.bench.settings import BenchConfig


def self_times(step, steps: int, room: list[int]) -> tuple[Counter, float, float, float]:
    """Self CPU milliseconds per operator over `steps` steps, their total, the part on tensors of the room's
    shape, and the part on any (batch, heads, columns, head size) tensor."""
    step()  # warm-up: allocator and kernel selection
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(steps):
            step()
    per_op, on_room, per_head = Counter(), 0.0, 0.0
    for event in prof.key_averages(group_by_input_shape=True):
        ms = event.self_cpu_time_total / 1000
        per_op[event.key] += ms
        shape = list(event.input_shapes[0]) if event.input_shapes else []
        on_room += ms if shape == room else 0.0
        per_head += ms if len(shape) == 4 and shape[:2] == room[:2] and shape[3] == room[3] else 0.0
    return per_op, sum(per_op.values()), on_room, per_head


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vocab", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = BenchConfig(vocab=args.vocab, batch=args.batch)
    model = build_model(cfg)
    engine = make_engine(model, cfg)
    latent_ids, plain_ids, labels, _ = build_batch(cfg)
    mask = torch.ones_like(latent_ids)
    heads, width = model.config.num_attention_heads, model.config.hidden_size
    room = [cfg.batch, heads, latent_ids.shape[1], width // heads]

    def plain():
        model(input_ids=plain_ids, attention_mask=mask, labels=labels).loss.backward()

    def latent():
        engine(latent_ids, mask, labels).loss.backward()

    plain_ops, plain_total, _, plain_head = self_times(plain, args.steps, room)
    latent_ops, latent_total, on_room, latent_head = self_times(latent, args.steps, room)
    per_step = args.steps
    extra = (latent_head - plain_head) / per_step
    print(f"{args.steps} steps, vocab {args.vocab}, batch {args.batch}, {args.threads} threads, room {room}")
    print(f"self CPU a step: plain {plain_total / per_step:.0f} ms, latent {latent_total / per_step:.0f} ms "
          f"(profiled once each: compare several runs, or coconut bench, before reading their ratio)")
    print(f"(batch, heads, columns, head size) tensors a step: plain {plain_head / per_step:.0f} ms, latent "
          f"{latent_head / per_step:.0f} ms, of which the room's shape {on_room / per_step:.0f} ms: the latent step "
          f"spends {extra:.0f} ms more, {extra / (plain_total / per_step):.1%} of a plain step")
    print("\n| operator | plain ms | latent ms | difference |\n|---|---|---|---|")
    diff = {op: latent_ops[op] - plain_ops[op] for op in set(plain_ops) | set(latent_ops)}
    for op in sorted(diff, key=lambda op: -abs(diff[op]))[:12]:
        print(f"| {op} | {plain_ops[op]:.0f} | {latent_ops[op]:.0f} | {diff[op]:+.0f} |")


if __name__ == "__main__":
    main()
