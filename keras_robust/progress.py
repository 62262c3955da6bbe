"""Progress bars and result lines on stderr: the bar only where someone watches.

The one rule every long loop of the library follows (the robustness report's
attacks and corruptions, `corruptions.corruption_accuracy`, the data-centric
enhancement, the benchmarks): with `progress=True` a bar
(`keras.utils.Progbar`: done/total, the bar, the ETA and the time per step)
goes to `sys.stderr` **when it is a terminal**; piped into a file or captured
by a test, only the result lines (`line`: one per finished attack, shard,
corruption) are printed, so a log keeps what was measured. The environment
variable `KERAS_ROBUST_PROGRESS` overrides the terminal test: "1" (or "always",
"true", "on") shows progress anyway (a CI log, a notebook), "0" (or "never",
"false", "off") hides it even on a terminal. `progress=False` always hides it.

This module is ground floor: it imports nothing else from `keras_robust`.

Example:

```python
with bar("FGSM", total=num_batches, enabled=progress) as b:
    for batch in batches:
        ...
        b.update()
line("FGSM: 41.0%", enabled=progress)
```
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
import time
from typing import TextIO

__all__ = ["Bar", "bar", "line", "stream"]

ENVIRONMENT_VARIABLE = "KERAS_ROBUST_PROGRESS"
_ALWAYS = ("1", "always", "true", "on", "yes")
_NEVER = ("0", "never", "false", "off", "no")
# Keras' bar prints the ETA as the first bold field after the bar glyphs; the label
# "ETA" goes in front of it (the final redraw shows the elapsed time instead).
_ETA_FIELD = re.compile("(━\x1b\\[0m )(\x1b\\[1m)")


def stream(enabled: bool = True) -> TextIO | None:
    """Where progress goes: `sys.stderr` when it should show, else None.

    Args:
        enabled: the caller's `progress` argument; False always gives None.

    Returns:
        `sys.stderr` (looked up now, so redirections count) when `enabled`
        and either it is a terminal or `KERAS_ROBUST_PROGRESS` forces
        progress on; None otherwise.

    Raises:
        ValueError: `KERAS_ROBUST_PROGRESS` is set to something else than the
            values above (or empty).

    Example:

    >>> stream(enabled=False) is None
    True
    """
    if not enabled:
        return None
    forced = os.environ.get(ENVIRONMENT_VARIABLE, "").strip().lower()
    if forced in _NEVER:
        return None
    if forced in _ALWAYS:
        return sys.stderr
    if forced:
        raise ValueError(f"{ENVIRONMENT_VARIABLE}={forced!r}: expected one of "
                         f"{_ALWAYS + _NEVER} (or unset: progress on a terminal only).")
    output = sys.stderr
    isatty = getattr(output, "isatty", None)
    try:
        return output if callable(isatty) and isatty() else None
    except ValueError:  # a closed stream
        return None


def line(text: str, enabled: bool = True) -> None:
    """Prints one result line to stderr: also when it is not a terminal (a log
    keeps what was measured), unless `enabled` is False or
    `KERAS_ROBUST_PROGRESS` hides progress.

    Args:
        text: the line.
        enabled: the caller's `progress` argument.

    Example:

    >>> line("PGD-20 (CE): 41.0%", enabled=False)  # prints nothing
    """
    if stream(enabled) is None and (
            not enabled
            or os.environ.get(ENVIRONMENT_VARIABLE, "").strip().lower() in _NEVER):
        return
    print(text, file=sys.stderr, flush=True)


class _Prefixed:
    """A write-only text stream that puts a title at the start of each redraw of the
    bar and the label "ETA" in front of Keras' ETA field."""

    def __init__(self, output: TextIO, title: str):
        self.output, self.title = output, title

    def write(self, text: str) -> int:
        head, carriage, rest = text.rpartition("\r")
        if carriage:
            text = head + "\r" + self.title + _ETA_FIELD.sub(r"\1ETA \2", rest, count=1)
        elif not text.startswith("\n") and text.strip():
            text = self.title + text
        self.output.write(text)
        return len(text)

    def flush(self) -> None:
        self.output.flush()

    def isatty(self) -> bool:
        return True

    @property
    def encoding(self) -> str:
        return getattr(self.output, "encoding", None) or "utf-8"


class Bar:
    """A per-step `keras.utils.Progbar` on stderr, or nothing (see `stream`).

    Args:
        title: printed in front of the bar, e.g. "[report cnn] FGSM ".
        total: the number of steps (e.g. batches); 0 or less shows no bar.
        enabled: the caller's `progress` argument.
        unit: the step's name in the time-per-step field.

    Use it as a context manager; `update()` after each step. Leaving the
    block early (an exception) ends the line so the traceback starts clean.

    Example:

    >>> with Bar("[demo] ", total=3, enabled=False) as b:
    ...     for _ in range(3):
    ...         b.update()
    >>> b.done, b.active
    (3, False)
    """

    def __init__(self, title: str, total: int, enabled: bool = True, unit: str = "batch"):
        self.title, self.total, self.unit = title, int(total), unit
        self.done = 0
        self._output = stream(enabled) if self.total > 0 else None
        self._bar = None
        self.started = time.time()

    @property
    def active(self) -> bool:
        """Whether the bar prints anything."""
        return self._output is not None

    def _show(self, finalize: bool | None = None) -> None:
        if self._output is None:
            return
        target = _Prefixed(self._output, self.title)
        with contextlib.redirect_stdout(target):
            if self._bar is None:
                import keras

                self._bar = keras.utils.Progbar(self.total, interval=0.0, unit_name=self.unit)
            self._bar.update(self.done, finalize=finalize)

    def __enter__(self) -> "Bar":
        self._show(finalize=False)
        return self

    def update(self, steps: int = 1) -> None:
        """Counts `steps` more steps done and redraws the bar."""
        self.done = min(self.total, self.done + int(steps))
        self._show()

    def __exit__(self, kind, value, traceback) -> None:
        if self._output is None:
            return
        if kind is not None or self.done < self.total:
            self._output.write("\n")
            self._output.flush()


def bar(title: str, total: int, enabled: bool = True, unit: str = "batch") -> Bar:
    """A `Bar` (see there): `with bar("FGSM", n, progress) as b: ...; b.update()`.

    Args:
        title: printed in front of the bar.
        total: the number of steps.
        enabled: the caller's `progress` argument.
        unit: the step's name in the time-per-step field.

    Returns:
        A `Bar`.

    Example:

    >>> with bar("[demo] ", total=2, enabled=False) as b:
    ...     b.update(2)
    >>> b.done
    2
    """
    return Bar(title, total, enabled, unit)
