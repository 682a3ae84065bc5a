"""Checkpoints read safely (`weights_only`), with one clear message for a missing or corrupt file."""

from __future__ import annotations

from pathlib import Path

import torch

from coconut.config import ConfigError


class CheckpointError(ValueError):
    pass


def check_checkpoint(path) -> dict:
    """Load a Lightning checkpoint with `weights_only=True`; raise CheckpointError naming the problem."""

    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path}: no such file")
    if path.is_file() and path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path}: empty file (0 bytes); was its writing interrupted? use another "
                              "checkpoint (stage<k>.ckpt, best.ckpt)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, wrong format, pickled code refused by weights_only
        # Some of these errors have an empty message: name the type alone then.
        first = (str(err).strip().splitlines() or [""])[0]
        first = first if len(first) <= 160 else first[:157].rsplit(" ", 1)[0] + " ..."
        raise CheckpointError(f"checkpoint {path}: cannot be read safely ({type(err).__name__}"
                              f"{': ' + first if first else ''}); give a .ckpt file written by coconut train "
                              "(runs/NAME/checkpoints/), not a truncated copy or another program's pickle") from err
    if not isinstance(state, dict) or not isinstance(state.get("state_dict"), dict):
        raise CheckpointError(f"checkpoint {path}: not a Lightning checkpoint (no state_dict)")
    check_contents(state, path)
    return state


def check_contents(state: dict, path) -> None:
    """What the loaders would trip over later (a traceback, or a silent accuracy of 0): a stage or epoch that is
    no integer, a state_dict entry that is no tensor, a weight that is NaN or infinite (a run that diverged)."""
    for key in (STAGE_KEY, "epoch"):
        value = state.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise CheckpointError(f"checkpoint {path}: {key} is {value!r}, not an integer >= 0; it was not written "
                                  "by coconut train: use a checkpoint of runs/NAME/checkpoints/")
    for name, tensor in state["state_dict"].items():
        if not isinstance(tensor, torch.Tensor):
            raise CheckpointError(f"checkpoint {path}: state_dict[{name!r}] is a {type(tensor).__name__}, not a "
                                  "tensor; it was not written by coconut train: use a checkpoint of "
                                  "runs/NAME/checkpoints/")
        # One pass, one reduction per tensor: fast even for a large model.
        if (tensor.is_floating_point() or tensor.is_complex()) and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise CheckpointError(f"checkpoint {path}: {name} holds {bad} non-finite value(s) (NaN or inf) of "
                                  f"{tensor.numel()}; the run diverged before this checkpoint: use an earlier one "
                                  "(stage<k>.ckpt), or train again with a lower optim.lr or optim.grad_clip")


def check_fits(module, state: dict, path, tokenizer=None) -> None:
    """The checkpoint's tensors are this model's, with the same shapes; else one line naming the first that is not.
    With `tokenizer` (this run's), the checkpoint's run must have numbered its tokens the same."""
    if tokenizer is not None:
        check_same_vocabulary(path, tokenizer, f"checkpoint {path}")
    own = module.state_dict()
    saved = state["state_dict"]
    for key, tensor in saved.items():
        mine = own.get(key)
        if mine is not None and hasattr(tensor, "shape") and tuple(tensor.shape) != tuple(mine.shape):
            raise CheckpointError(
                f"checkpoint {path}: {key} has shape {list(tensor.shape)} there but {list(mine.shape)} in this model; "
                "was it trained with another model config (model.*, data.tokenizer, method)?")
    missing = [k for k in own if k not in saved]
    unexpected = [k for k in saved if k not in own]
    if missing or unexpected:
        raise CheckpointError(
            f"checkpoint {path}: does not fit this model (missing {len(missing)} keys, e.g. {missing[:2]}; "
            f"unexpected {len(unexpected)}, e.g. {unexpected[:2]}); was it trained with another model config?"
        )


def load_weights(module, state: dict, path, tokenizer=None) -> None:
    check_fits(module, state, path, tokenizer)  # load_state_dict would raise a many-line RuntimeError on a shape
    module.load_state_dict(state["state_dict"])


# Parameters a run may add on top of the checkpoint it starts from (absent from a CoT run, say; step supervision's
# decoder keeps its pretrained weights when the run starts from a COCONUT run, as the SIM-CoT release does).
NEW_HEADS = ("engine.projection.", "engine.stop_head.", "step_decoder.")


def init_weights(module, path, init_id: int | None = None, tokenizer=None, init_token: str | None = None) -> None:
    """Start a run from another run's weights (`model.init_from`); new latent heads keep their init.

    A CoT run embeds no new tokens, so its vocabulary is smaller than a COCONUT run's: its rows are loaded
    and the new rows copy row `init_id` of the loaded weights (`model.init_token`), which is the order the
    release follows on GSM8k (load the CoT weights, then initialise the new tokens from "<<"). With `tokenizer`
    (this run's), `init_id` defaults to the id of `init_token` (or of the tokenizer's end of sequence), and the checkpoint's
    run must have numbered its tokens the same (`check_same_vocabulary`)."""
    if not Path(path).exists():
        raise CheckpointError(f"model.init_from={path}: no such file; train the run it comes from first "
                              "(coconut table does so in order: CoT before COCONUT)")
    if tokenizer is not None:
        check_same_vocabulary(path, tokenizer, f"model.init_from={path}")
        if init_id is None:
            init_id = tokenizer.convert_tokens_to_ids(init_token or tokenizer.eos_token)
    state = check_checkpoint(path)
    weights = dict(state["state_dict"])
    own = module.state_dict()
    for key, saved in weights.items():
        mine = own.get(key)
        if (init_id is not None and mine is not None and saved.ndim == mine.ndim >= 1 and saved.shape[1:] == mine.shape[1:]
                and init_id < saved.shape[0] < mine.shape[0]):
            extra = saved[init_id].unsqueeze(0).expand(mine.shape[0] - saved.shape[0], *saved.shape[1:])
            weights[key] = torch.cat([saved, extra.to(saved.dtype)])
    missing, unexpected = module.load_state_dict(weights, strict=False)
    missing = [k for k in missing if not k.startswith(NEW_HEADS)]
    unexpected = [k for k in unexpected if not k.startswith(NEW_HEADS)]
    if missing or unexpected:
        raise CheckpointError(
            f"model.init_from={path}: does not fit this model (missing {len(missing)} keys, e.g. {missing[:2]}; "
            f"unexpected {len(unexpected)}, e.g. {unexpected[:2]}); it must come from a run with the same model "
            "and tokenizer"
        )


def check_same_vocabulary(path, tokenizer, what: str | None = None) -> None:
    """CheckpointError when the run that saved checkpoint `path` (RUN/checkpoints/X.ckpt, its tokenizer in
    RUN/tokenizer) gave any of its tokens another id than `tokenizer` does: each embedding row would be loaded as
    another token's, and the shapes alone cannot tell (a word tokenizer numbers the words of its own data, so two
    data sets with as many words fit each other's embeddings). A checkpoint outside a run folder is not checked.
    `what` names the checkpoint in the message (default: checkpoint PATH)."""
    from transformers import PreTrainedTokenizerFast

    from coconut.run_dir import CHECKPOINTS, RunDir

    saved = RunDir(Path(path).parent.parent).tokenizer / "tokenizer.json"
    if Path(path).parent.name != CHECKPOINTS or not saved.is_file():
        return
    theirs = PreTrainedTokenizerFast(tokenizer_file=str(saved)).get_vocab()
    mine = tokenizer.get_vocab()
    differ = sorted((i, token) for token, i in theirs.items() if mine.get(token) != i)
    if not differ:
        return
    first, token = differ[0]
    here = next((t for t, i in mine.items() if i == first), None)
    raise CheckpointError(
        f"{what or f'checkpoint {path}'}: its run's tokenizer ({saved.parent}) numbers {len(differ)} of its {len(theirs)} "
        f"tokens otherwise than this run's (id {first} is {token!r} there, {here!r} here), so its embedding rows "
        f"would be loaded as other tokens'; start from a run whose tokenizer has the same tokens (a word "
        f"tokenizer is built from its data's words: the same data, or data of the same words)")


STAGE_KEY = "curriculum_stage"  # written into every checkpoint by CoconutModule.on_save_checkpoint


def checkpoint_stage(state: dict, schedule) -> int:
    """The curriculum stage a checkpoint was trained at (from its epoch when it does not say)."""
    if state.get(STAGE_KEY) is not None:
        return int(state[STAGE_KEY])
    return schedule.stage(int(state.get("epoch", 0)))


def check_eval_stage(cfg, stage: int | None) -> None:
    """`stage=K` of eval and analyze: at most the method's final stage. The curriculum builds every stage above it
    as the final one, so K would be printed while another stage is evaluated."""
    final = cfg.final_stage()
    if stage is not None and stage > final:
        raise ConfigError(f"stage={stage}: beyond the final stage of method {cfg.method.name} ({final}, after which "
                          f"its samples no longer change); the largest stage allowed is {final}")
