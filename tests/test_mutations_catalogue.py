"""The mutation catalogue (tests/mutations.toml) is well-formed.

tests/mutate.py applies each entry in a scratch copy and runs its tests (a tool
run by hand, not in CI); this test only checks, fast and without TensorFlow, that
every entry can be applied and names tests that exist: the required keys, a
known area, unique names, an `original` found exactly once in its file and
different from its `replacement`, and test node ids naming an existing file and
a test function (or `Class::method`) defined in it, parsed with `ast`.
"""
from __future__ import annotations

import ast
import functools
import os
import re
import sys

import pytest

if sys.version_info < (3, 11):  # tomllib
    pytest.skip("the mutation catalogue needs Python 3.11+ (tomllib)", allow_module_level=True)

import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CATALOGUE = os.path.join(ROOT, "tests", "mutations.toml")
AREAS = {"attacks", "defences", "report", "corruptions", "datacentric", "backbones", "data"}
REQUIRED = {"name": str, "area": str, "file": str, "original": str, "replacement": str,
            "tests": list, "why": str}
OPTIONAL = {"equivalent": str}
MIN_ENTRIES = 40
KEBAB = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)+$")
NODE = re.compile(r"^(?P<file>tests/[\w/]+\.py)::(?P<names>\w+(::\w+)?)(\[[^\]]+\])?$")


def _entries() -> list[dict]:
    with open(CATALOGUE, "rb") as f:
        return tomllib.load(f).get("mutation", [])


@functools.lru_cache(maxsize=None)
def _defined_tests(path: str) -> frozenset[str]:
    """Top-level `test*` functions and `Class::test*` methods of a test file."""
    with open(os.path.join(ROOT, path)) as f:
        tree = ast.parse(f.read(), filename=path)
    names = set()
    functions = (ast.FunctionDef, ast.AsyncFunctionDef)
    for node in tree.body:
        if isinstance(node, functions):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names.update(f"{node.name}::{item.name}" for item in node.body
                         if isinstance(item, functions))
    return frozenset(n for n in names if n.split("::")[-1].startswith("test"))


def _problems(entry: dict) -> list[str]:
    """Everything wrong with one entry (empty when it is well-formed)."""
    problems = [f"missing key {key!r}" for key in REQUIRED if key not in entry]
    problems += [f"unknown key {key!r}" for key in entry if key not in {*REQUIRED, *OPTIONAL}]
    for key, kind in {**REQUIRED, **OPTIONAL}.items():
        if key in entry and (not isinstance(entry[key], kind) or not entry[key]):
            problems.append(f"{key!r} must be a non-empty {kind.__name__}")
    if problems:
        return problems
    if not KEBAB.match(entry["name"]):
        problems.append("name is not kebab-case")
    if entry["area"] not in AREAS:
        problems.append(f"area {entry['area']!r} is not one of {sorted(AREAS)}")
    if entry["original"] == entry["replacement"]:
        problems.append("original and replacement are the same")
    path = os.path.join(ROOT, entry["file"])
    if not os.path.isfile(path):
        problems.append(f"file {entry['file']!r} does not exist")
    else:
        with open(path) as f:
            count = f.read().count(entry["original"])
        if count != 1:
            problems.append(f"original occurs {count} times in {entry['file']} (expected once)")
    for node in entry["tests"]:
        match = NODE.match(node) if isinstance(node, str) else None
        if match is None:
            problems.append(f"test {node!r} is not a node id tests/<file>.py::<test>[param]")
        elif not os.path.isfile(os.path.join(ROOT, match["file"])):
            problems.append(f"test file {match['file']!r} does not exist")
        elif match["names"] not in _defined_tests(match["file"]):
            problems.append(f"{match['file']} defines no test {match['names']!r}")
    return problems


def test_every_mutation_entry_is_well_formed():
    entries = _entries()
    assert len(entries) >= MIN_ENTRIES, f"{len(entries)} entries, expected at least {MIN_ENTRIES}"
    names = [entry.get("name") for entry in entries]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    assert not duplicates, f"duplicate names: {duplicates}"
    report = {entry.get("name", f"#{i + 1}"): _problems(entry) for i, entry in enumerate(entries)}
    bad = {name: problems for name, problems in report.items() if problems}
    assert not bad, "malformed entries:\n" + "\n".join(
        f"  {name}: {'; '.join(problems)}" for name, problems in bad.items())


def test_the_problems_check_finds_what_it_should():
    # The check above can fail: a broken entry shows each of its faults.
    good = _entries()[0]
    assert _problems(good) == []
    broken = {**good, "name": "Not Kebab", "area": "training",
              "original": "text found nowhere in the file", "tests": ["tests/nope.py::test_x",
                                                                      "tests/bat/test_bat.py::nope"]}
    problems = "; ".join(_problems(broken))
    for expected in ("kebab", "area", "occurs 0 times", "nope.py", "defines no test"):
        assert expected in problems, problems
    assert _problems({**good, "replacement": good["original"]}) == [
        "original and replacement are the same"]
    assert "missing key 'why'" in _problems({k: v for k, v in good.items() if k != "why"})
