"""`coconut bench --compile MODE`: latent training steps with compiled passes (`latent.compile`) against eager ones.

The first steps compile (dynamo traces the prefix, thought and final passes, forward and backward); their time is
reported apart. Then compiled and eager steps alternate, and the median of their ratios is the figure.
"""

from __future__ import annotations

import statistics
import time

import torch

from coconut.bench.builders import make_engine
from coconut.bench.settings import BenchConfig

WARMUP_STEPS = 2  # the first compiles every graph; the second catches a recompile for the cache's later lengths


def compile_figures(cfg: BenchConfig, model, engine, latent_step, timed, latent_ids, mask, labels) -> dict:
    compiled = make_engine(model, cfg)
    compiled.compile_mode = cfg.compile
    torch._dynamo.reset()
    start = time.perf_counter()
    for _ in range(WARMUP_STEPS):
        latent_step(compiled)
    compile_s = time.perf_counter() - start
    ratios, steps = [], []
    for i in range(cfg.repeats):
        pair = {}
        order = (("eager", engine), ("compiled", compiled))
        for name, which in order if i % 2 else order[::-1]:
            pair[name] = timed(lambda: latent_step(which))
        ratios.append(pair["compiled"] / pair["eager"])
        steps.append(pair["compiled"])
    model.eval()  # no dropout: both engines must see the same network
    with torch.no_grad():
        diff = abs(float(compiled(latent_ids, mask, labels).loss) - float(engine(latent_ids, mask, labels).loss))
    model.train()
    return {"compile_mode": cfg.compile, "compiled_latent_step_ms": 1000 * statistics.median(steps),
            "compiled_step_ratio_vs_eager": statistics.median(ratios), "compile_warmup_s": compile_s,
            "compiled_loss_diff_vs_eager": diff}
