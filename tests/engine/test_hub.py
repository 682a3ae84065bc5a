"""A model or tokenizer that is not at hand fails in seconds, naming the key and `hf download ORG/NAME`, whether
offline or with the hub unreachable; a reachable hub and the local cache are used as from_pretrained uses them."""

import json
import os
import subprocess
import sys

import pytest

from coconut.config import ConfigError
from coconut.engine import hub
from coconut.engine.hub import load_from_hub_or_cache


class Loads:
    """A stand-in for from_pretrained: records local_files_only, and fails (OSError) where told to."""

    def __init__(self, cached: bool):
        self.cached, self.calls = cached, []

    def __call__(self, local_files_only: bool):
        self.calls.append(local_files_only)
        if local_files_only and not self.cached:
            raise OSError("not in the cache")
        return "loaded"


@pytest.fixture
def online(monkeypatch):
    monkeypatch.setattr("huggingface_hub.is_offline_mode", lambda: False)
    return monkeypatch


def test_a_reachable_hub_loads_as_from_pretrained_does(online):
    online.setattr(hub, "hub_problem", lambda name: None)
    load = Loads(cached=False)
    assert load_from_hub_or_cache(load, "org/name", "model.name_or_path", "model") == "loaded"
    assert load.calls == [False]


def test_an_unreachable_hub_reads_the_cache_once(online):
    online.setattr(hub, "hub_problem", lambda name: ("unreachable", "ConnectError"))
    load = Loads(cached=True)
    assert load_from_hub_or_cache(load, "org/name", "model.name_or_path", "model") == "loaded"
    assert load.calls == [True], "only the cache: from_pretrained would retry the hub for each file"
    with pytest.raises(ConfigError, match=r"model.name_or_path='org/name': the model is not in the Hugging Face cache "
                                          r"and the hub .* cannot be reached: ConnectError.*\(hf download org/name\)"):
        load_from_hub_or_cache(Loads(cached=False), "org/name", "model.name_or_path", "model")


def test_a_repository_the_hub_does_not_know_is_named(online):
    online.setattr(hub, "hub_problem", lambda name: ("missing", "RepositoryNotFoundError"))
    load = Loads(cached=True)
    with pytest.raises(ConfigError, match=r"data.tokenizer='org/typo': no such tokenizer on the Hugging Face hub"):
        load_from_hub_or_cache(load, "org/typo", "data.tokenizer", "tokenizer")
    assert load.calls == []


def test_offline_never_asks_the_hub(monkeypatch):
    monkeypatch.setattr("huggingface_hub.is_offline_mode", lambda: True)
    monkeypatch.setattr(hub, "hub_problem", lambda name: pytest.fail("asked the hub while offline"))
    load = Loads(cached=True)
    assert load_from_hub_or_cache(load, "org/name", "model.name_or_path", "model") == "loaded" and load.calls == [True]
    with pytest.raises(ConfigError, match=r"offline mode is on .*\(hf download org/name\)"):
        load_from_hub_or_cache(Loads(cached=False), "org/name", "model.name_or_path", "model")


def test_a_local_folder_loads_directly_and_a_missing_path_is_not_a_hub_id(online, tmp_path):
    online.setattr(hub, "hub_problem", lambda name: pytest.fail("asked the hub for a local folder"))
    load = Loads(cached=False)
    assert load_from_hub_or_cache(load, str(tmp_path), "model.name_or_path", "model") == "loaded"
    assert load.calls == [False]
    with pytest.raises(ConfigError, match=r"model.name_or_path='\./models/gone': no such folder, and not a Hugging "
                                          r"Face hub id"):
        load_from_hub_or_cache(load, "./models/gone", "model.name_or_path", "model")


# The real loaders in a fresh process, the hub at a closed local port (nothing listens on port 9, discard), or
# offline: each failure is timed from the call, after the imports.
TIMED = """
import json, sys, time
from coconut.config import ConfigError
from coconut.engine.models import load_pretrained_lm
from coconut.engine.special_tokens import load_tokenizer
out = {}
for name, load in (("model", load_pretrained_lm), ("tokenizer", load_tokenizer)):
    start = time.perf_counter()
    try:
        load("no-such-org/no-such-model")
        out[name] = ["loaded", 0.0]
    except ConfigError as err:
        out[name] = [str(err), time.perf_counter() - start]
print(json.dumps(out))
"""


@pytest.mark.parametrize("setting", ["unreachable", "offline"])
def test_a_model_not_at_hand_fails_in_seconds_naming_hf_download(setting, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env["HF_HOME"] = str(tmp_path / "hf")  # an empty cache
    if setting == "unreachable":
        env["HF_ENDPOINT"] = "http://127.0.0.1:9"
    else:
        env["HF_HUB_OFFLINE"] = "1"
    done = subprocess.run([sys.executable, "-c", TIMED], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    for what, key in (("model", "model.name_or_path"), ("tokenizer", "data.tokenizer")):
        message, seconds = found[what]
        assert message.startswith(f"{key}='no-such-org/no-such-model': the {what} is not in the Hugging Face cache")
        assert "(hf download no-such-org/no-such-model)" in message
        assert seconds < 10, f"{what}: {seconds:.1f} s (the hub's retries take about half a minute per file)"
    assert "Retrying" not in done.stderr
