"""Tiny training configurations for the integration tests, and a helper to run one in a subprocess."""

from __future__ import annotations

import sys
from pathlib import Path

TINY = [
    "model.layers=1", "model.hidden=16", "model.heads=2", "model.intermediate=32", "model.max_positions=128",
    "data.train_size=64", "data.val_size=24", "data.test_size=24", "data.batch_size=16", "data.eval_batch_size=12",
    "method.max_latent_stage=2", "trainer.max_epochs=4", "trainer.epochs_per_stage=1", "trainer.first_stage_epochs=null",
    "trainer.progress_bar=false",
    "trainer.log_every_n_steps=1", "eval.max_new_tokens=12", "optim.warmup_steps=2",
]
# demo_coconut starts from demo_cot's stage-0 checkpoint on phrase-rendered data and is tested at its last
# checkpoint, with stage mixing; the tiny runs train the whole curriculum from scratch on compact data, without
# mixing, batched as the release batches (not by length), tested at the best.
FROM_SCRATCH = ["model.init_from=null", "trainer.start_epoch=0", "data.render=null", "eval.checkpoint=best",
                "method.uniform_prob=0.0", "data.batch_by_length=false"]


def tiny_overrides(root: Path, *extra: str) -> list[str]:
    return [f"output_dir={root / 'runs'}", f"data.data_dir={root / 'data'}", *TINY, *FROM_SCRATCH, *extra]


if __name__ == "__main__":
    # python tiny_run.py ROOT KILL_AT_STEP [overrides...]: train, SIGKILL itself at that global step.
    import os
    import signal

    import lightning as L

    from coconut.experiment import load_config
    from coconut.train.run import train

    class KillAt(L.Callback):
        def __init__(self, step):
            self.step = step

        def on_train_batch_end(self, trainer, *args):
            if trainer.global_step >= self.step:
                os.kill(os.getpid(), signal.SIGKILL)

    root, kill_at = Path(sys.argv[1]), int(sys.argv[2])
    cfg = load_config("demo_coconut", tiny_overrides(root, *sys.argv[3:]))
    train(cfg, extra_callbacks=[KillAt(kill_at)] if kill_at >= 0 else [])
