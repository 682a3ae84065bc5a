"""The import rule of the layout, read from the source with `ast` (imports inside functions count too):

- coconut/engine and coconut/data never import lightning, coconut.train, coconut.cli, coconut.analysis or
  coconut.bench; the engine never imports coconut.data, and the data never imports coconut.engine (what both
  speak, the markers and the ignored label, is owned by coconut/markers.py);
- coconut/methods (the method objects the config, the data and the engine ask), coconut/markers.py and
  coconut/text_format.py import no torch, transformers or other layer (markers: the config's error type only;
  methods: the text formats' leaf; text_format: nothing of the package);
- coconut/train never imports coconut.cli; nothing but coconut/cli and coconut/__main__.py imports coconut.cli;
- lightning is imported under coconut/train and coconut/cli only;
- `import coconut` and the engine's public names leave Lightning unloaded;
- no module is over 300 lines.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "coconut"
MAX_LINES = 300


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in a file; relative imports resolved."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module
            # `from coconut import cli` imports coconut.cli: count the names too.
            found += [(node.lineno, name)] + [(node.lineno, f"{name}.{alias.name}") for alias in node.names]
    return found


def layer(path: Path) -> str:
    """engine, data, train, analysis, bench, cli, config, or the file name for top-level modules (experiment.py, __main__.py)."""
    return path.relative_to(PACKAGE).parts[0]


def forbidden_for(path: Path) -> tuple[str, ...]:
    where = layer(path)
    banned = []
    if where in ("engine", "data"):
        banned += ["coconut.train", "coconut.cli", "coconut.analysis", "coconut.bench"]
    if where == "engine":
        banned += ["coconut.data"]
    if where == "data":
        banned += ["coconut.engine"]
    if where in ("methods", "markers.py", "text_format.py"):
        banned += ["torch", "transformers", "coconut.data", "coconut.engine", "coconut.train", "coconut.analysis",
                   "coconut.bench", "coconut.experiment", "coconut.run_dir"]
        if where in ("methods", "text_format.py"):
            banned += ["coconut.config", "coconut.markers"]
        if where == "text_format.py":
            banned += ["coconut.methods"]
    if where not in ("cli", "__main__.py"):
        banned += ["coconut.cli"]
    if where not in ("train", "cli"):
        banned += ["lightning", "pytorch_lightning", "lightning_fabric"]
    return tuple(banned)


def is_under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_the_package_has_every_layer():
    assert {layer(p) for p in MODULES} >= {"engine", "data", "train", "analysis", "bench", "cli", "config",
                                            "methods", "markers.py", "text_format.py", "experiment.py",
                                            "__main__.py"}


def test_no_layer_imports_what_the_rule_forbids():
    offending = []
    for path in MODULES:
        banned = forbidden_for(path)
        for line, name in imported_names(path):
            hit = next((b for b in banned if is_under(name, b)), None)
            if hit:
                offending.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {name} (no {hit} in {layer(path)})")
    assert not offending, "import rule broken:\n" + "\n".join(sorted(set(offending)))


def test_the_checker_sees_relative_function_level_and_from_package_imports(tmp_path, monkeypatch):
    """The rule's own test: a forbidden import in each form is found."""
    fake = tmp_path / "coconut"
    (fake / "engine").mkdir(parents=True)
    (fake / "engine" / "bad.py").write_text(
        "def f():\n    import lightning as L\n"
        "from ..train import module\n"
        "from coconut import cli\n"
        "from ..data.records import load_records\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    path = fake / "engine" / "bad.py"
    names = {name for _, name in imported_names(path)}
    assert {"lightning", "coconut.train.module", "coconut.cli", "coconut.data.records"} <= names
    banned = forbidden_for(path)
    assert {b for b in banned for n in names if is_under(n, b)} == {"lightning", "coconut.train", "coconut.cli",
                                                                    "coconut.data"}


def test_no_module_is_over_300_lines():
    long = {str(p.relative_to(PACKAGE.parent)): n for p in MODULES if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_importing_the_engine_leaves_lightning_unloaded():
    probe = ("import sys\n"
             "import coconut\n"
             "from coconut import LatentReasoner, add_latent_tokens, GenerateOutput, LatentInputError\n"
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('lightning', 'pytorch_lightning')))\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=PACKAGE.parent)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]", f"importing the engine loaded Lightning: {out.stdout.strip()[:500]}"


@pytest.mark.parametrize("module", ["coconut.engine", "coconut.data", "coconut.config", "coconut.experiment"])
def test_lower_layers_import_without_lightning(module):
    probe = f"import sys, {module}\nprint('lightning' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=PACKAGE.parent)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False", f"import {module} loaded Lightning"


def test_config_never_imports_data_or_engine():
    """The config schema is torch-free and below the layers that read it: it imports none of them."""
    banned = ("coconut.data", "coconut.engine", "coconut.train", "coconut.analysis", "coconut.bench", "torch")
    offending = [f"{path.relative_to(PACKAGE.parent)}:{line} imports {name}"
                 for path in MODULES if layer(path) == "config"
                 for line, name in imported_names(path) if any(is_under(name, b) for b in banned)]
    assert not offending, "the config layer imports a layer above it or torch:\n" + "\n".join(sorted(set(offending)))


def test_bench_modules_form_no_cycle():
    """coconut.bench.* modules import one another without a cycle (imports inside functions count too)."""
    bench = {module_name(p): p for p in MODULES if layer(p) == "bench"}
    # Edges to other bench modules only: every bench module lies under the package coconut.bench itself.
    graph = {mod: sorted({other for _, name in imported_names(path) for other in bench
                          if other != "coconut.bench" and other != mod and is_under(name, other)})
             for mod, path in bench.items()}
    done = set()

    def cycle_from(mod, stack):
        """The first cycle reached from `mod` (a list of modules, the first one repeated at its end), else None."""
        if mod in stack:
            return stack[stack.index(mod):] + [mod]
        if mod in done:
            return None
        found = next((c for other in graph[mod] if (c := cycle_from(other, stack + [mod]))), None)
        done.add(mod)
        return found

    cycle = next((c for mod in sorted(graph) if (c := cycle_from(mod, []))), None)
    assert cycle is None, "import cycle among coconut.bench modules: " + " -> ".join(cycle)
