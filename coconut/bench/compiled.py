"""`coconut bench --compile MODE`: latent training steps with compiled passes (`latent.compile`) against eager ones.

The first steps compile (dynamo traces the prefix, thought and final passes, forward and backward); their time is
reported apart. Then compiled and eager steps alternate, and the median of their ratios is the figure. In a mode
with CUDA graphs, the graphs inductor left without them are counted, with its reasons (a pass that mutates an
input it does not own, say): the step ratio alone would not say whether the graphs ran.
"""

from __future__ import annotations

import contextlib
import logging
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
    with cudagraph_skips() as skipped:
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
            "compiled_loss_diff_vs_eager": diff, "cudagraph_skips": len(skipped),
            "cudagraph_skip_reasons": sorted(set(skipped))}


@contextlib.contextmanager
def cudagraph_skips():
    """Within: the messages inductor logs for each graph it runs without CUDA graphs."""
    found: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record):
            found.append(record.getMessage())

    from torch._inductor import cudagraph_utils

    logger, handler = cudagraph_utils.cudagraphs_log, Collect(logging.WARNING)
    logger.addHandler(handler)
    try:
        yield found
    finally:
        logger.removeHandler(handler)
