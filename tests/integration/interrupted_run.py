"""A tiny run that is stopped the way clusters stop jobs, for tests/integration/test_preemption.py.

    python interrupted_run.py ROOT MODE STEP [overrides ...]

MODE:
- kill-in-write / term-in-write: the write of last.ckpt at global step STEP writes half its bytes, then the
  process sends itself SIGKILL (it dies there) or SIGTERM (the write goes on, the run stops at the next step);
- term-at-batch / int-at-batch: SIGTERM or SIGINT after the STEP-th training batch (counted from 1).
Exits as `coconut train` does: 128 + the signal for a stop, 0 when the run finished.
"""

from __future__ import annotations

import io
import os
import signal
import sys
from pathlib import Path

SIGNALS = {"kill-in-write": signal.SIGKILL, "term-in-write": signal.SIGTERM, "term-at-batch": signal.SIGTERM,
           "int-at-batch": signal.SIGINT}


def signal_in_checkpoint_write(step: int, signum: int) -> None:
    import torch

    save = torch.save
    fired = []

    def writing_last(out) -> bool:
        """Whether `out` is the file that becomes last.ckpt (its temporary name says so)."""
        try:
            return "last.ckpt" in os.readlink(f"/proc/self/fd/{out.fileno()}")
        except (AttributeError, OSError, ValueError):
            return False

    def half_then_signal(obj, out, *args, **kwargs):
        if fired or not (isinstance(obj, dict) and obj.get("global_step") == step and writing_last(out)):
            return save(obj, out, *args, **kwargs)
        fired.append(True)
        buffer = io.BytesIO()
        save(obj, buffer, *args, **kwargs)
        data = buffer.getvalue()
        out.write(data[: len(data) // 2])
        out.flush()
        os.kill(os.getpid(), signum)  # SIGKILL: dies here, half written; SIGTERM: the handler asks to stop
        out.write(data[len(data) // 2:])

    torch.save = half_then_signal


def main() -> int:
    import lightning as L

    from coconut.cli.errors import describe
    from coconut.experiment import load_config
    from coconut.train.run import train
    from tests.integration.tiny_run import tiny_overrides

    root, mode, step = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    callbacks = []
    if mode.endswith("-in-write"):
        signal_in_checkpoint_write(step, SIGNALS[mode])
    else:
        class SignalAt(L.Callback):
            batches = 0

            def on_train_batch_end(self, trainer, *args):
                self.batches += 1
                if self.batches == step:
                    os.kill(os.getpid(), SIGNALS[mode])

        callbacks.append(SignalAt())
    cfg = load_config("demo_coconut", tiny_overrides(root, *sys.argv[4:]))
    try:
        train(cfg, extra_callbacks=callbacks)
    except BaseException as err:  # what the command prints and returns
        code, message = describe(err, "train")
        print(f"coconut train: {message}", file=sys.stderr)
        return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
