"""One finished run as the report reads it: results.json checked field by field, config.yaml for its row.

results.json holds figures a run can produce or it is refused, naming the file and the field: an accuracy is
a fraction of the questions (7.5 would be shown as 750 %), a token count is not negative, an effective batch
is at least one example. A run is known by its `run_id` (written by training), or by the sha256 of its
results.json when it has none (runs written before it), so a copied folder is recognised as the same run.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

from coconut.config import METHODS
from coconut.run_dir import BEST, LAST, RunDir

METHOD_LABELS = {name: info.label for name, info in METHODS.items()}  # the paper's row order

# The test metrics (coconut.train.metrics.EvalMetrics), by what they measure. Others are not read.
FRACTIONS = ("test/acc", "test/cot_match")  # of the questions: [0, 1]
COUNTS = ("test/tokens", "test/language_tokens", "test/language_tokens_with_eos", "test/thoughts", "test/passes")
REQUIRED = ("test/acc", "test/tokens")


class ReportError(ValueError):
    """A run folder that cannot be reported, with the file and field named."""


@dataclass
class RunResult:
    run_dir: str
    dataset: str
    method: str  # the method's name in the config
    label: str  # the row: method plus any non-default decoding, stopping or thought rule
    group: str  # the run's name without its _seed<k> suffix: runs of one group differ only in seed
    seed: int
    acc: float
    tokens: float
    test_split: str = "test"  # "val" when the run's data had no test file
    identity: str = ""  # "run_id <hex>", or "sha256 <hex>" of results.json for a run written without one
    tested_checkpoint: str | None = None  # "best" or "last" (runs written before the key: None)
    schedule_complete: bool | None = None  # False: the schedule ended before the final stage, last.ckpt was tested
    changed_settings: tuple[str, ...] = ()  # settings a resume changed (run.json's attempts), if any


def _number(value, key: str, path: Path, low: float, high: float | None = None, what: str = "") -> float:
    # bool is an int to Python, and float("0.9") would accept a string: neither is a measured figure.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ReportError(f"{path}: field '{key}' is {value!r}, not a finite number")
    if value < low or (high is not None and value > high):
        bounds = f"outside [{low:g}, {high:g}]" if high is not None else f"below {low:g}"
        raise ReportError(f"{path}: field '{key}' is {value!r}, {bounds} ({what}); the run is not counted: "
                          "was results.json edited or written by another program?")
    return float(value)


def _integer(value, key: str, path: Path, low: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ReportError(f"{path}: field '{key}' is {value!r}, not an integer >= {low} ({what}); the run is not "
                          "counted: was results.json edited or written by another program?")
    return value


def _choice(results: dict, key: str, path: Path, allowed: tuple, what: str):
    value = results.get(key)
    # 1 == True to Python: the type must match too.
    if value is not None and not any(value == a and type(value) is type(a) for a in allowed):
        expected = " or ".join(json.dumps(a) for a in allowed)  # as JSON writes them: "best", true
        raise ReportError(f"{path}: field '{key}' is {json.dumps(value)}, expected {expected} ({what})")
    return value


def run_identity(results: dict, raw: bytes, path: Path) -> str:
    """The run's `run_id`, or for a run written before training wrote one, its results.json's sha256 (an exact
    copy of the folder is then the same run; a copy edited by hand is not recognised)."""
    run_id = results.get("run_id")
    if run_id is None:
        return "sha256 " + hashlib.sha256(raw).hexdigest()
    try:
        return "run_id " + uuid.UUID(run_id).hex  # 32 hex digits, with or without dashes
    except (ValueError, TypeError, AttributeError) as err:
        raise ReportError(f"{path}: field 'run_id' is {run_id!r}, not a run id (a uuid, 32 hex digits)") from err


def read_results(path: Path) -> tuple[dict, dict, str]:
    """(results, its test metrics as numbers, identity), every field the report reads checked."""
    raw = path.read_bytes()
    try:
        results = json.loads(raw.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ReportError(f"{path}: not valid JSON ({str(err).splitlines()[0]})") from err
    test = results.get("test", {}) if isinstance(results, dict) else None
    if not isinstance(test, dict):
        raise ReportError(f"{path}: expected an object with a field 'test' of metrics")
    for key in REQUIRED:
        if key not in test:
            raise ReportError(f"{path}: field 'test' has no {key!r}; was the run's test interrupted?")
    metrics = {}
    for key, value in test.items():
        if key in FRACTIONS:
            metrics[key] = _number(value, key, path, 0, 1, "a fraction of the questions")
        elif key in COUNTS:
            metrics[key] = _number(value, key, path, 0, None, "a mean count per question")
    if results.get("test_split", "test") not in ("test", "val"):
        raise ReportError(f"{path}: field 'test_split' is {results['test_split']!r}, expected 'test' or 'val'")
    for key, low, what in (("effective_batch", 1, "examples per optimizer step"),
                           ("test_stage", 0, "the curriculum stage tested")):
        if key in results:
            _integer(results[key], key, path, low, what)
    if "seconds" in results:
        _number(results["seconds"], "seconds", path, 0, None, "the run's wall time")
    if "checkpoint" in results and not isinstance(results["checkpoint"], str):
        raise ReportError(f"{path}: field 'checkpoint' is {results['checkpoint']!r}, not a path")
    _choice(results, "tested_checkpoint", path, (BEST, LAST), "which of the run's checkpoints was tested")
    _choice(results, "schedule_complete", path, (True, False), "whether training reached the final stage")
    return results, metrics, run_identity(results, raw, path)


def read_run(run_dir: Path) -> RunResult:
    import yaml
    from omegaconf import DictConfig, OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    results_path, config_path = RunDir(run_dir).results, RunDir(run_dir).config
    for path in (results_path, config_path):
        if not path.exists():
            raise ReportError(f"{path}: no such file; is {run_dir} a finished run (coconut train writes both)?")
    results, metrics, identity = read_results(results_path)
    try:
        cfg = OmegaConf.load(config_path)
        if not isinstance(cfg, DictConfig):
            raise ReportError(f"{config_path}: expected a mapping of config keys, got a list")
        run = _from_config(cfg, run_dir, metrics["test/acc"], metrics["test/tokens"])
    except ReportError:
        raise
    except yaml.MarkedYAMLError as err:
        line = f", line {err.problem_mark.line + 1}" if err.problem_mark else ""
        raise ReportError(f"{config_path}: not valid YAML ({err.problem}{line})") from err
    except (yaml.YAMLError, OmegaConfBaseException, ValueError, TypeError, AttributeError) as err:  # missing keys
        raise ReportError(f"{config_path}: not a run's config ({str(err).splitlines()[0]})") from err
    run.test_split, run.identity = results.get("test_split", "test"), identity
    run.tested_checkpoint, run.schedule_complete = results.get("tested_checkpoint"), results.get("schedule_complete")
    run.changed_settings = changed_on_resume(RunDir(run_dir).marker)
    return run


def changed_on_resume(marker: Path) -> tuple[str, ...]:
    """The settings a resume changed, from run.json's attempts (`coconut.train.run_folder.keep_earlier_config`); none
    for a run.json that is missing or unreadable (an older run), which the results alone still report."""
    try:
        attempts = json.loads(marker.read_text()).get("attempts", [])
        return tuple(sorted({key for a in attempts if isinstance(a, dict) for key in a.get("changed") or {}}))
    except (OSError, ValueError, AttributeError, TypeError):
        return ()


def _from_config(cfg, run_dir: Path, acc: float, tokens: float) -> RunResult:
    from omegaconf import OmegaConf

    method = str(cfg.method.name)
    label = METHOD_LABELS.get(method, method)
    decode = OmegaConf.select(cfg, "decode.name", default="greedy")
    if decode != "greedy":
        label += f" ({decode.replace('_', ' ')})"
    if OmegaConf.select(cfg, "eval.thoughts", default="fixed") == "learned":
        label += " (learned stop)"
    elif METHODS.get(method) and METHODS[method].embeds == "latent" and \
            not OmegaConf.select(cfg, "method.pad_latent_to_max", default=True):
        # Unpadded, each test question gets as many thoughts as its gold path has steps: a hint plain COCONUT lacks.
        label += " (thoughts = gold steps)"
    # Runs written before the `latent` piece existed kept it under `model`.
    jacobi = OmegaConf.select(cfg, "latent.jacobi_iterations", default=None) or \
        OmegaConf.select(cfg, "model.jacobi_iterations", default=None)
    if jacobi:
        label += f" (Jacobi {jacobi})"
    generator = cfg.data.generator
    dataset = str(generator) if generator else Path(str(cfg.data.data_dir)).name
    group = re.sub(r"_seed\d+$", "", str(cfg.name))
    seed = cfg.seed
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed is {seed!r}, not an integer")
    return RunResult(str(run_dir), dataset, method, label, group, seed, acc, tokens)


def distinct_runs(runs: list[RunResult], skipped: list[str]) -> list[RunResult]:
    """Each run once: a second folder of the same run (a copy) is left out, with a line naming both folders."""
    first: dict[str, RunResult] = {}
    for run in runs:
        if run.identity in first:
            kind, value = run.identity.split(" ", 1)
            same = f"run_id {value}" if kind == "run_id" else "the same results.json byte for byte, no run_id"
            skipped.append(f"{run.run_dir}: a copy of the run in {first[run.identity].run_dir} ({same}); "
                           "counted once, not as another seed")
        else:
            first[run.identity] = run
    return list(first.values())
