"""`--verbose` for every example: TensorFlow's start-up and INFO logs only when asked.

Importing this module defines the absl flag `--verbose` (default False).
`start()`, the first call of an example's `main`, imports TensorFlow through
`keras_robust` before anything else does, which drops TensorFlow's C++
start-up lines (see `keras_robust/_startup.py`), and sets the `tensorflow`
Python logger to WARNING (the SavedModel writer's INFO lines: renamed
signature inputs, "Assets written to", "Writing fingerprint"). With
`--verbose`, or `TF_CPP_MIN_LOG_LEVEL` set by the user, TensorFlow logs as it
always does.
"""
from __future__ import annotations

import logging
import os

from absl import flags

flags.DEFINE_boolean("verbose", False, "Show TensorFlow's start-up and INFO logs (quiet by "
                     "default; a TF_CPP_MIN_LOG_LEVEL you set is always respected).")


def start() -> None:
    """Imports TensorFlow quietly unless `--verbose` (call it before importing keras or TF)."""
    verbose = flags.FLAGS.verbose
    if verbose:
        os.environ.setdefault("KERAS_ROBUST_VERBOSE", "1")
    import keras_robust  # noqa: F401  (imports TensorFlow: keras_robust/_startup.py)

    if not verbose:
        logging.getLogger("tensorflow").setLevel(logging.WARNING)
