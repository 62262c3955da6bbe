"""A griffe extension for this site: doctest runs in docstrings become code blocks.

The docstrings follow the Keras habit of an `Example:` heading followed by
unindented `>>>` lines. Google-style parsing leaves those lines as Markdown
text, where `[...]` in an expected output reads as a reference link. This
extension wraps each run of doctest lines (a `>>>` line and every non-blank
line after it) in a fenced `pycon` block, outside existing fences, before the
docstring is parsed. The source files are not changed.

The extension also handles a package that exports a
function under the name of the submodule defining it (`keras_robust.attacks`
exports `pgd` from its `pgd` submodule): at run time the package attribute is
the function, but static analysis keeps the submodule under that name, so the
function would be missing from the API reference. The exported name is made
an alias of the function, as Python sees it.
"""
from __future__ import annotations

from typing import Any

import griffe


def fence_doctests(text: str) -> str:
    """Returns `text` with each run of doctest lines inside a fenced block."""
    out: list[str] = []
    in_fence = False
    in_run = False
    indent = ""
    for line in text.splitlines():
        stripped = line.strip()
        if in_run and not stripped:
            out.append(f"{indent}```")
            in_run = False
        if not in_run and stripped.startswith("```"):
            in_fence = not in_fence
        elif not in_fence and not in_run and stripped.startswith(">>>"):
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}```pycon")
            in_run = True
        out.append(line)
    if in_run:
        out.append(f"{indent}```")
    return "\n".join(out)


def _walk_modules(module: griffe.Module):
    yield module
    for member in list(module.members.values()):
        if not member.is_alias and member.is_module:
            yield from _walk_modules(member)


def _walk_objects(obj: griffe.Object):
    yield obj
    for member in list(obj.members.values()):
        if not member.is_alias:
            yield from _walk_objects(member)


class KerasRobustDocs(griffe.Extension):
    """Fences doctest runs; points exported names shadowed by a submodule at the function."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        for obj in _walk_objects(pkg):
            if obj.docstring is not None and ">>>" in obj.docstring.value:
                obj.docstring.value = fence_doctests(obj.docstring.value)
        modules = list(_walk_modules(pkg))
        # Resolve every alias first: their targets are looked up by path, and the
        # path through a shadowed submodule stops working once it is replaced.
        for module in modules:
            for member in module.members.values():
                if member.is_alias:
                    try:
                        member.final_target  # noqa: B018 (resolves and caches)
                    except (griffe.AliasResolutionError, griffe.CyclicAliasError):
                        pass
        for module in modules:
            for name in module.exports or ():
                name = name if isinstance(name, str) else getattr(name, "name", str(name))
                member = module.members.get(name)
                if member is None or member.is_alias or not member.is_module:
                    continue
                inner = member.members.get(name)
                if inner is None or inner.is_module:
                    continue
                target = inner.final_target if inner.is_alias else inner
                module.members[name] = griffe.Alias(name, target, parent=module)
