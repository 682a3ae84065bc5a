"""Checkpoints written whole or not at all, beside their final name.

Lightning's own writer stages the file in the system's temporary folder and moves it: across file systems (a run
folder on a cluster's shared disk, /tmp local) the move is a copy, and a kill or a full disk during it leaves a
truncated `last.ckpt` where the previous good one was. Here the bytes go to a temporary file in the checkpoint's
own folder, are flushed to disk, and replace the old file by one rename (coconut.atomic).
"""

from __future__ import annotations

from lightning.pytorch.plugins.io import TorchCheckpointIO

from coconut.atomic import write_with


class AtomicCheckpointIO(TorchCheckpointIO):
    """TorchCheckpointIO whose local writes are atomic; remote URLs (s3://, gs://) keep Lightning's writer."""

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        if storage_options is not None or "://" in str(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        import torch

        write_with(path, lambda out: torch.save(checkpoint, out))
