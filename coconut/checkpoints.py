"""Checkpoints read safely (`weights_only`), with one clear message for a missing or corrupt file."""

from __future__ import annotations

from pathlib import Path


class CheckpointError(ValueError):
    pass


def check_checkpoint(path) -> dict:
    """Load a Lightning checkpoint with `weights_only=True`; raise CheckpointError naming the problem."""
    import torch

    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path}: no such file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, wrong format, pickled code refused by weights_only
        raise CheckpointError(f"checkpoint {path}: cannot be read safely ({type(err).__name__}: {str(err).splitlines()[0][:200]})") from err
    if not isinstance(state, dict) or "state_dict" not in state:
        raise CheckpointError(f"checkpoint {path}: not a Lightning checkpoint (no state_dict)")
    return state


def load_weights(module, state: dict, path) -> None:
    missing, unexpected = module.load_state_dict(state["state_dict"], strict=False)
    if missing or unexpected:
        raise CheckpointError(
            f"checkpoint {path}: does not fit this model (missing {len(missing)} keys, e.g. {missing[:2]}; "
            f"unexpected {len(unexpected)}, e.g. {unexpected[:2]}); was it trained with another model config?"
        )
