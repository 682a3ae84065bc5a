"""Quiet runs: a normal `coconut train` and `coconut eval` print on stderr only progress bars and Lightning's
device lines, while the library lines they silence are matched one by one (any other warning still prints)."""

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.integration.tiny_run import tiny_overrides

REPO = Path(__file__).resolve().parents[2]
# What the libraries used to print on every run, whatever the run did.
KNOWN_NOISE = [r"Tip: For seamless cloud", r"LeafSpec", r"`weights_only` was not set", r"FLOPs"]
# A tqdm bar's frame ends in its timing block: "[00:01<00:02, 3.5q/s]" or "[00:00, ? examples/s]".
PROGRESS_FRAME = re.compile(r"\[\d\d:\d\d(<[^,\]]*)?, [^\]]*\]\s*$")
# Lightning's own INFO lines that a run legitimately prints: its devices, and why fit stopped.
LIGHTNING_INFO = [re.compile(p) for p in (r"GPU available: (True|False).*", r"TPU available: (True|False).*",
                                          r"LOCAL_RANK: \d+ - CUDA_VISIBLE_DEVICES: .*",
                                          r"`Trainer\.fit` stopped: `max_epochs=\d+` reached\.")]


def command(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "coconut.cli.main", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)


def remaining_lines(stderr: str) -> list[str]:
    """stderr's lines (a bar redraws itself with carriage returns) without progress-bar frames and blanks."""
    frames = (part.strip() for line in stderr.splitlines() for part in line.split("\r"))
    return [frame for frame in frames if frame and not PROGRESS_FRAME.search(frame)]


def unexplained(stderr: str) -> list[str]:
    return [line for line in remaining_lines(stderr) if not any(p.fullmatch(line) for p in LIGHTNING_INFO)]


def test_progress_frames_and_lightning_info_are_told_apart_from_other_lines():
    stderr = ("prosqa:   0%|          | 0/64 [00:00<?, ?q/s]\rprosqa: 100%|##| 64/64 [00:00<00:00, 5061.10q/s]\n"
              "Generating val split: 0 examples [00:00, ? examples/s]\n"
              "GPU available: False, used: False\n/x.py:3: UserWarning: something\n")
    assert unexplained(stderr) == ["/x.py:3: UserWarning: something"]


@pytest.mark.slow
def test_a_tiny_train_and_eval_print_no_library_noise(tmp_path):
    overrides = tiny_overrides(tmp_path, "trainer.accelerator=cpu")
    train = command("train", "demo_coconut", *overrides)
    assert train.returncode == 0, train.stderr[-3000:]
    for pattern in KNOWN_NOISE:
        assert not re.search(pattern, train.stderr + train.stdout), pattern
    assert unexplained(train.stderr) == [], train.stderr[-3000:]
    # Every data file is converted under one neutral split name: no "train" bar for the val and test files.
    assert set(re.findall(r"Generating (\w+) split", train.stderr)) == {"records"}
    assert re.search(r"^model: [\d.]+ \w? ?parameters, [\d.]+ \w? ?trainable \([\d.]+ MB\)$", train.stdout, re.M), \
        train.stdout  # Lightning's parameter counts, without the FLOPs it does not measure
    best = tmp_path / "runs" / "demo_coconut" / "checkpoints" / "best.ckpt"
    evaluated = command("eval", "demo_coconut", *overrides, f"ckpt={best}")
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert unexplained(evaluated.stderr) == [], evaluated.stderr[-3000:]
    assert "test/acc:" in evaluated.stdout


FILTERS_SCRIPT = textwrap.dedent("""
    import sys, warnings
    import lightning.pytorch  # first, as in a Python session that trains: the filters come later
    from lightning.pytorch.utilities._pytree import _tree_flatten
    from lightning.pytorch.utilities.rank_zero import rank_zero_info, rank_zero_warn
    from coconut.experiment import load_config
    from coconut.train import quiet
    from coconut.train.trainer import single_device_tester

    warnings.simplefilter("default")  # every warning once, whatever the interpreter's defaults
    if sys.argv[1] == "debug":
        quiet.configure(debug=True)  # what `coconut --debug` does before any run
    single_device_tester(load_config("demo_coconut", ["trainer.accelerator=cpu"]))  # Lightning's tip, on a Trainer
    _tree_flatten(1)  # Lightning's own pytree helper builds a LeafSpec: torch's deprecation
    warnings.warn_explicit("`isinstance(treespec, LeafSpec)` is deprecated (elsewhere)", FutureWarning, "mine.py", 1,
                           module="mine")
    warnings.warn_explicit("another deprecation", FutureWarning, "_pytree.py", 2,
                           module="lightning.pytorch.utilities._pytree")
    rank_zero_info("another Lightning line")
    rank_zero_warn("a genuine Lightning warning")
""")


@pytest.mark.parametrize("mode", ["quiet", "debug"])
def test_the_filters_drop_only_the_lines_they_name_and_debug_shows_everything(tmp_path, mode):
    script = tmp_path / "filters.py"
    script.write_text(FILTERS_SCRIPT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, str(script), mode], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    err = proc.stderr
    # Other lines from the same sources still print: another message of the same module and category, the same
    # message from another module, Lightning's other INFO lines and its warnings.
    for line in ("is deprecated (elsewhere)", "another deprecation", "another Lightning line",
                 "a genuine Lightning warning", "GPU available:"):
        assert line in err, (line, err)
    silenced = ("Tip: For seamless cloud", "`isinstance(treespec, LeafSpec)` is deprecated, use")
    for line in silenced:
        assert (line in err) == (mode == "debug"), (line, err)
