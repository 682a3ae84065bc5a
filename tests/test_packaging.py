"""What a non-editable install ships: every config group and experiment file, under the distribution's own name.

A wheel is built from a copy of the sources and installed into a fresh virtual environment (which borrows this
one's dependencies); `python -m coconut train prosqa_coconut --dry-run` must then work from another folder. Before
conf/ and experiments/ were package data, such an install listed no experiment at all.
"""

import os
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "coconut"


def _shipped_yaml() -> set[str]:
    return {p.relative_to(ROOT).as_posix() for folder in ("conf", "experiments") for p in (PACKAGE / folder).rglob("*.yaml")}


def test_the_clone_keeps_conf_and_experiments_at_the_top():
    # Users of a clone (and the docs) name conf/... and experiments/...: symlinks into the package.
    for folder in ("conf", "experiments"):
        assert (ROOT / folder).resolve() == (PACKAGE / folder).resolve()
    assert len([p for p in _shipped_yaml() if p.startswith("coconut/experiments/")]) >= 30


def _has_setuptools_77() -> bool:
    try:
        import setuptools
    except ImportError:
        return False
    return int(setuptools.__version__.split(".")[0]) >= 77


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the sources (so the checkout gains no build/ folder)."""
    import shutil

    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(PACKAGE, src / "coconut", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    # Offline with this environment's setuptools when it is recent enough (pyproject asks for >= 77), else isolated.
    isolation = ["--no-build-isolation"] if _has_setuptools_77() else []
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", *isolation, "-q", "-w", str(tmp / "w")],
                   check=True, capture_output=True, text=True, timeout=300)
    (found,) = (tmp / "w").glob("*.whl")
    return found


@pytest.mark.slow
def test_the_wheel_has_every_yaml_and_the_command(wheel):
    assert wheel.name.startswith("coconut_latent-"), "PyPI's `coconut` is another project: the name must differ"
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        info = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = z.read(info).decode()
        entry_points = z.read(info.replace("METADATA", "entry_points.txt")).decode()
    missing = _shipped_yaml() - names
    assert not missing, f"not in the wheel: {sorted(missing)}"
    assert "Name: coconut-latent" in metadata.splitlines()
    assert "License-Expression: MIT" in metadata.splitlines()
    assert "coconut = coconut.cli.main:main" in entry_points
    assert "coconut/cli/main.py" in names and not any(n.startswith(("conf/", "experiments/", "tests/")) for n in names)


@pytest.mark.slow
def test_an_installed_wheel_runs_an_experiment_from_another_folder(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
                   check=True, capture_output=True, text=True, timeout=300)
    # torch, omegaconf, ... come from this environment, after the new one's own site-packages (which holds coconut).
    # Its .pth files are not read from there, so the checkout's editable install does not leak in.
    target = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                 check=True, capture_output=True, text=True).stdout.strip())
    ours = {sysconfig.get_paths()["purelib"], *site.getsitepackages()}
    (target / "borrowed.pth").write_text("\n".join(sorted(ours)) + "\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}

    def run(*args):
        return subprocess.run([str(python), *args], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120)

    probe = run("-c", "import coconut, coconut.experiment as e; print(coconut.__file__); print(len(e.experiment_names()))")
    assert probe.returncode == 0, probe.stderr
    where, count = probe.stdout.split()
    assert Path(where).is_relative_to(target), "coconut is imported from the installed wheel, not the checkout"
    assert int(count) == len(list((PACKAGE / "experiments").glob("*.yaml")))
    dry = run("-m", "coconut", "train", "prosqa_coconut", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("name: prosqa_coconut\n") and "max_latent_stage" in dry.stdout
    assert (venv / "bin" / "coconut").exists(), "the command is installed too"
    assert not list(elsewhere.iterdir()), "a dry run writes nothing"
