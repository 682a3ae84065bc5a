"""Methods are objects in a registry (coconut.methods): nothing else compares a method's name, every method
module holds one method, and the registry agrees with the config groups and the config schema."""

import ast
import re
from dataclasses import fields
from pathlib import Path

import pytest

from coconut.config import MethodConfig
from coconut.methods import METHODS, Method, method

PACKAGE = Path(__file__).resolve().parents[1] / "coconut"
NAMES = set(METHODS)


def _strings(node) -> set[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return set().union(*(_strings(e) for e in node.elts)) if node.elts else set()
    if isinstance(node, ast.BinOp):  # ("a",) + ("b",)
        return _strings(node.left) | _strings(node.right)
    return set()


def name_comparisons(source: str) -> list[tuple[int, str]]:
    """(line, name) of every comparison (==, !=, in, not in, match case) against a registered method's name."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            for side in [node.left, *node.comparators]:
                found += [(node.lineno, s) for s in _strings(side) & NAMES]
        elif isinstance(node, ast.match_case) and isinstance(node.pattern, ast.MatchValue):
            found += [(node.pattern.lineno, s) for s in _strings(node.pattern.value) & NAMES]
    return found


def test_the_scan_finds_comparisons():
    # The scan itself must see each form a comparison of names takes, or the next test would pass vacuously.
    code = ('a == "icot"\nb in ("cot", "no_cot")\nc not in STEP + ("no_curriculum",)\n"coconut" != d\n'
            'match e:\n    case "pause":\n        pass\n')
    assert sorted(name_comparisons(code)) == [(1, "icot"), (2, "cot"), (2, "no_cot"), (3, "no_curriculum"),
                                              (4, "coconut"), (6, "pause")]
    assert name_comparisons('f(name="cot")\nx = {"cot": 1}\n') == []  # arguments and keys are not comparisons


def test_no_method_name_is_compared_outside_the_registry():
    offending = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.is_relative_to(PACKAGE / "methods"):
            continue
        offending += [f"{path.relative_to(PACKAGE.parent)}:{line} compares {name!r}"
                      for line, name in name_comparisons(path.read_text())]
    assert not offending, "ask coconut.methods.method(name) instead:\n" + "\n".join(offending)


def test_each_method_module_holds_one_registered_method():
    for name, m in METHODS.items():
        assert isinstance(m, Method) and m.name == name and m.label and m.description
        module = Path(__import__(type(m).__module__, fromlist=["_"]).__file__)
        assert module.parent == PACKAGE / "methods", f"{name} lives outside coconut/methods"
    modules = {type(m).__module__ for m in METHODS.values()}
    assert len(modules) == len(METHODS), "one module per method"


def test_the_registry_matches_the_method_config_groups():
    groups = {p.stem for p in (PACKAGE / "conf" / "method").glob("*.yaml")}
    assert groups == NAMES


def test_every_method_reads_only_fields_the_schema_has():
    schema = {f.name for f in fields(MethodConfig)}
    for name, m in METHODS.items():
        assert set(m.used_fields()) <= schema, name
        cfg = MethodConfig(name=name)
        assert cfg.used_fields() == m.used_fields(cfg)
        assert set(m.prompt_fields) <= set(m.fields)
    # A group shown only when it is on: step supervision's fields, for the methods that have it.
    assert "step_loss_weight" not in MethodConfig(name="coconut").used_fields()
    assert "step_loss_weight" in MethodConfig(name="coconut", step_supervision=True).used_fields()
    assert "step_loss_weight" not in METHODS["coconut"].prompt_fields


def test_an_unknown_name_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match="unknown method 'simcot'.*cot, no_cot"):
        method("simcot")


def test_the_methods_answer_as_the_paper_defines_them():
    # Table 1's rows in order, and which of them train stage by stage and feed back thoughts.
    assert [m.label for m in METHODS.values()] == ["CoT", "No-CoT", "iCoT", "Pause token", "COCONUT",
                                                   "w/o curriculum", "w/o thought", "pause as thought", "CODI"]
    assert {n for n, m in METHODS.items() if m.stepwise} == {"coconut", "no_thought", "pause_as_thought"}
    assert {n for n, m in METHODS.items() if m.latent_passes} == {"coconut", "no_curriculum", "codi"}
    cfg = MethodConfig(max_latent_stage=3)
    assert {n: m.final_stage(cfg, last_stage=7) for n, m in METHODS.items()} == {
        "cot": 0, "no_cot": 0, "icot": 7, "pause": 0, "coconut": 4, "no_curriculum": 0, "no_thought": 4,
        "pause_as_thought": 4, "codi": 0}


def test_the_config_text_formats_are_the_tokenizers():
    from coconut.config.data import TEXT_FORMAT_NAMES
    from coconut.data.tokenize import TEXT_FORMATS

    assert set(TEXT_FORMAT_NAMES) == set(TEXT_FORMATS)


def test_table1_holds_the_papers_rows_only():
    from coconut.methods import TABLE1_METHODS

    assert TABLE1_METHODS == ("cot", "no_cot", "icot", "pause", "coconut", "no_curriculum", "no_thought",
                              "pause_as_thought")


def test_the_final_stages_thoughts():
    cfg = MethodConfig(max_latent_stage=3, thoughts_per_step=2, num_latent=5)
    thoughts = {name: MethodConfig(**{**cfg.__dict__, "name": name}).max_thoughts for name in METHODS}
    assert thoughts == {"cot": 0, "no_cot": 0, "icot": 0, "pause": 0, "coconut": 6, "no_curriculum": 6,
                        "no_thought": 0, "pause_as_thought": 0, "codi": 5}


def test_the_method_config_is_the_union_of_the_methods_option_groups():
    from coconut.methods import OPTION_GROUPS

    declared = ["name"] + [f.name for group in OPTION_GROUPS for f in fields(group)]
    assert [f.name for f in fields(MethodConfig)] == declared
    for name, m in METHODS.items():  # each method's fields are its groups', with the groups' defaults
        cfg = MethodConfig(name=name)
        for group in m.options:
            assert {f.name: getattr(cfg, f.name) for f in fields(group)} == group().__dict__


def test_two_groups_declaring_one_field_are_refused():
    from dataclasses import dataclass

    from coconut.config.method import _assembled_fields

    @dataclass
    class Mine:
        num_pause: int = 3

    from coconut.methods.pause import PauseOptions

    with pytest.raises(TypeError, match="'num_pause' is declared by both PauseOptions and .*Mine"):
        _assembled_fields([PauseOptions, Mine])


MENTIONS_CODI = re.compile(r"(?i)(?<![a-z])codi(?![a-z])")  # "codi", "CODI", "codi_loss"; not "decoding"
CODI_FILES = ("methods/codi.py", "methods/__init__.py", "engine/codi_loss.py", "engine/codi_checkpoint.py")


def codi_mentions(source: str) -> list[tuple[int, str]]:
    """(line, text) of every name, attribute, argument, import or string in the code (docstrings and comments
    aside) that names CODI."""
    tree = ast.parse(source)
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and n.body
                  and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    found = []
    for node in ast.walk(tree):
        texts = {ast.Name: lambda n: [n.id], ast.Attribute: lambda n: [n.attr], ast.arg: lambda n: [n.arg],
                 ast.FunctionDef: lambda n: [n.name], ast.ClassDef: lambda n: [n.name],
                 ast.alias: lambda n: [n.name, n.asname or ""], ast.ImportFrom: lambda n: [n.module or ""],
                 ast.keyword: lambda n: [n.arg or ""]}.get(type(node), lambda n: [])(node)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            texts = [node.value]
        found += [(getattr(node, "lineno", 0), t) for t in texts if MENTIONS_CODI.search(t)]
    return found


def test_the_codi_scan_sees_each_form():
    code = ('"""CODI in a docstring is prose."""\nimport coconut.engine.codi_loss\nx = cfg.codi_checkpoint\n'
            'f(codi=1)\ny = "the CODI release"\ndef codi_engine(codi_arg): pass\n# codi in a comment\n'
            'decoding = "decoding"\n')
    assert sorted({line for line, _ in codi_mentions(code)}) == [2, 3, 4, 5, 6]


def test_codi_lives_in_its_own_files():
    # Adding a method touches its module, the registry's line, its config group and experiments, and the code
    # it alone runs (its loss, its release's reader): nothing in the framework names it.
    offending = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if str(path.relative_to(PACKAGE)) in CODI_FILES:
            continue
        offending += [f"{path.relative_to(PACKAGE.parent)}:{line} names it: {text[:60]!r}"
                      for line, text in codi_mentions(path.read_text())]
    assert not offending, "CODI named outside its own files:\n" + "\n".join(offending)
