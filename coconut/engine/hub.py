"""Loading a model or tokenizer by hub id without waiting on a hub that cannot be reached.

`from_pretrained` of a hub id that is not in the cache asks the hub, and when the hub cannot be reached
huggingface_hub retries each file with a growing back-off (about half a minute per file) before it gives up. Here
the hub is asked once, with a short timeout, whether the repository exists; when it cannot be reached (or
HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE is set) only the local cache is read, so a model that is not at hand fails in
seconds, with the command that fetches it (`hf download ORG/NAME`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, TypeVar

from coconut.config.checks import ConfigError

T = TypeVar("T")


def fetch_command(name: str) -> str:
    return f"hf download {name}"


def hub_problem(name: str) -> tuple[str, str] | None:
    """None when the hub answers that repository `name` exists; else ("missing" | "unreachable", why).

    One request, no retries, huggingface_hub's metadata timeout (HF_HUB_ETAG_TIMEOUT, 10 s unless set)."""
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    try:
        HfApi().model_info(name, timeout=constants.HF_HUB_ETAG_TIMEOUT)
    except RepositoryNotFoundError as err:  # 404, or 401: private or gated without a token
        return "missing", type(err).__name__
    except HfHubHTTPError as err:  # 5xx, 429: the hub answers but cannot serve it now
        status = getattr(err.response, "status_code", "?")
        return "unreachable", f"HTTP {status}"
    except Exception as err:  # noqa: BLE001 -- any network failure (refused, DNS, timeout, proxy) means "not reachable"
        return "unreachable", type(err).__name__
    return None


def load_from_hub_or_cache(load: Callable[[bool], T], name: str, key: str, what: str) -> T:
    """`load(local_files_only)` of `name` (a hub id or a local folder), failing fast when it is not at hand.

    key: the config key that names it (model.name_or_path, data.tokenizer); what: "model" or "tokenizer".
    A local folder, or a hub id the hub confirms, loads as from_pretrained does (the cache first, updated from the
    hub). Offline, or when the hub cannot be reached, only the cache is read. Other OSErrors (a gated repository,
    a missing file) reach the caller, whose message says what the folder or repository lacks."""
    from huggingface_hub import is_offline_mode

    if Path(name).expanduser().is_dir():
        return load(False)
    _check_hub_id(name, key)
    if is_offline_mode():
        return _from_cache(load, name, key, what, "offline mode is on (HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE)")
    problem = hub_problem(name)
    if problem is None:
        return load(False)
    kind, why = problem
    if kind == "missing":
        raise ConfigError(f"{key}={name!r}: no such {what} on the Hugging Face hub, and no such local folder "
                          f"({why}); check the name (ORG/NAME), log in for a private or gated one (hf auth login), "
                          f"or point {key} to a local folder")
    from huggingface_hub import constants

    return _from_cache(load, name, key, what, f"the hub ({constants.ENDPOINT}) cannot be reached: {why}")


def _from_cache(load: Callable[[bool], T], name: str, key: str, what: str, why: str) -> T:
    try:
        return load(True)
    except OSError as err:
        raise ConfigError(f"{key}={name!r}: the {what} is not in the Hugging Face cache and {why}; download it once "
                          f"where the hub is reachable ({fetch_command(name)}), or point {key} to a local "
                          f"folder") from err


def _check_hub_id(name: str, key: str) -> None:
    """A name that is not a folder must be a hub id (NAME or ORG/NAME); a mistyped path says so at once."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError as err:
        raise ConfigError(f"{key}={name!r}: no such folder, and not a Hugging Face hub id (ORG/NAME); point {key} to "
                          f"a folder holding the files, or give a hub id") from err
