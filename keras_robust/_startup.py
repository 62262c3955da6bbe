"""Imports TensorFlow without its C++ start-up logs, unless asked for them.

Importing TensorFlow 2.2x prints, from C++ and before its logging is set up,
lines that tell a user nothing about their run ("oneDNN custom operations are
on", "Could not find cuda drivers on your machine", "failed call to cuInit",
the CPU-instructions notice). `import keras_robust` imports TensorFlow with
file descriptor 2 captured, drops exactly those known lines and writes
everything else back to stderr, so an unexpected message still shows. It also
sets `TF_CPP_MIN_LOG_LEVEL=1` (C++ INFO off, warnings and errors on) with
`os.environ.setdefault`.

Nothing is changed when the user asked for the logs: `KERAS_ROBUST_VERBOSE=1`
(the examples' `--verbose` sets it), `TF_CPP_MIN_LOG_LEVEL=0`, or TensorFlow
already imported. A level the user set is kept (these start-up lines, logged
before TensorFlow reads it, ignore it: a level of 1 or more asks for no INFO).

`quiet_export()` does the same for `model.export`'s SavedModel writer, which
logs every renamed signature input, "Assets written to" and "Writing
fingerprint" through absl at INFO (the level absl apps such as the examples
run at).

This module is ground floor: it imports nothing from `keras_robust`.
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from typing import Iterator

VERBOSE_VARIABLE = "KERAS_ROBUST_VERBOSE"
# The start-up lines dropped (anything else captured is written back).
_NOISE = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called"
    r"|oneDNN custom operations are on"
    r"|Could not find cuda drivers on your machine"
    r"|failed call to cuInit"
    r"|cpu_feature_guard\.cc"
    r"|To enable the following instructions: .* rebuild TensorFlow"
    r"|Unable to register cu(DNN|FFT|BLAS) factory"
    r"|computation placer already registered"
    r"|TF-TRT Warning: Could not find TensorRT"
)


def verbose() -> bool:
    """Whether the user asked for TensorFlow's start-up logs (`KERAS_ROBUST_VERBOSE`)."""
    return os.environ.get(VERBOSE_VARIABLE, "").strip().lower() in ("1", "true", "yes", "on")


def quiet_lines(text: str) -> str:
    """`text` without the known start-up lines (the others, in order)."""
    return "".join(line for line in text.splitlines(keepends=True) if not _NOISE.search(line))


def import_tensorflow_quietly() -> None:
    """Imports TensorFlow (and lists its devices, which logs the CUDA probe) quietly.

    See the module's docstring for what is dropped and when nothing is.
    """
    if "tensorflow" in sys.modules or verbose() or os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no file descriptor 2 to capture
        import tensorflow  # noqa: F401

        return
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            rest = quiet_lines(captured.read().decode("utf-8", "replace"))
            if rest:
                sys.stderr.write(rest)
                sys.stderr.flush()


@contextlib.contextmanager
def quiet_export() -> Iterator[None]:
    """Raises absl's logging threshold to WARNING inside the block, unless `verbose()`."""
    from absl import logging

    if verbose() or logging.get_verbosity() <= logging.WARNING:
        yield
        return
    previous = logging.get_verbosity()
    logging.set_verbosity(logging.WARNING)
    try:
        yield
    finally:
        logging.set_verbosity(previous)
