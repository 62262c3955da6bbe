"""Every public name has a Keras-style docstring, and its examples run.

A public name is one in the `__all__` of a public module of `keras_robust`.
Its docstring needs an example and, for a function with parameters, an
`Args:` section; every `>>>` line runs under doctest (ELLIPSIS and
NORMALIZE_WHITESPACE) in the globals of the module that defines it, plus
`np`, `tf`, `keras` and `keras_robust` (also as `kr`), and must print what it shows.
"""
from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_robust


def _public_names() -> list[tuple[str, object]]:
    """(qualified name, object) of every public callable, each object once."""
    found, seen = [], set()
    for info in pkgutil.walk_packages(keras_robust.__path__, "keras_robust."):
        if any(part.startswith("_") for part in info.name.split(".")[1:]):
            continue
        module = importlib.import_module(info.name)
        for name in getattr(module, "__all__", None) or []:
            obj = getattr(module, name, None)
            if obj is None or id(obj) in seen or not callable(obj):
                continue
            seen.add(id(obj))
            found.append((f"{info.name}.{name}", obj))
    return found


PUBLIC = _public_names()


def test_there_are_public_names_to_check():
    names = {name for name, _ in PUBLIC}
    assert len(PUBLIC) > 100
    assert {"keras_robust.attacks.pgd", "keras_robust.evaluate.robustness_report"} <= names


def test_every_public_name_documents_its_args_and_shows_an_example():
    incomplete = []
    for name, obj in PUBLIC:
        doc = inspect.getdoc(obj) or ""
        function = inspect.isfunction(inspect.unwrap(obj))
        problems = [problem for problem, missing in (
            ("no docstring", not doc),
            ("no example", doc and ">>>" not in doc and "Example" not in doc),
            ("no Args", doc and function and inspect.signature(obj).parameters and "Args" not in doc),
        ) if missing]
        if problems:
            incomplete.append(f"{name}: {', '.join(problems)}")
    assert not incomplete, "\n".join(incomplete)


def _doctest(name: str, obj) -> doctest.DocTest:
    home = importlib.import_module(obj.__module__)
    namespace = {**vars(home), "np": np, "tf": tf, "keras": keras, "keras_robust": keras_robust,
                 "kr": keras_robust}
    return doctest.DocTestParser().get_doctest(inspect.getdoc(obj) or "", namespace, name, None, 0)


WITH_EXAMPLES = [(name, obj) for name, obj in PUBLIC if _doctest(name, obj).examples]


@pytest.mark.slow
@pytest.mark.parametrize("name,obj", WITH_EXAMPLES, ids=[name for name, _ in WITH_EXAMPLES])
def test_the_docstring_examples_run(name, obj):
    report = []
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(_doctest(name, obj), out=report.append)
    assert runner.failures == 0, "".join(report)
