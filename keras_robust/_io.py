"""The library's file writing: JSON (NumPy values included) and atomic renames.

The ground floor of the package: it imports nothing from `keras_robust`, so
any module (the evaluation reports, the benchmark, the data-centric output
format, the examples' recipes) can write files without importing another.
"""
from __future__ import annotations

import json
import os
from typing import Any

import numpy as np


def json_default(value: Any) -> Any:
    """`json.dump`'s `default`: NumPy scalars and arrays as numbers and lists, tuples as lists."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"Not JSON serialisable: {type(value).__name__}")


def temporary_path(path: str) -> str:
    """A unique temporary name beside `path` (same folder, so the rename is atomic)."""
    return f"{path}.tmp-{os.getpid()}-{os.urandom(4).hex()}"


def fsync_directory(directory: str) -> None:
    """Flushes a folder's entries (a rename inside it) to disk, where the file system allows."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:  # some file systems do not open directories
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def fsync_file(path: str) -> None:
    """Flushes a written file's bytes to disk."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def save_json(path: str, payload: Any, indent: int = 2, sort_keys: bool = False,
              atomic: bool = False) -> None:
    """Writes JSON (NumPy scalars and arrays included), creating folders.

    Args:
        path: the file to write.
        payload: what to write.
        indent: JSON indentation.
        sort_keys: write object keys sorted.
        atomic: write under a temporary name, end with a newline, fsync and
            rename to `path`, so a reader never sees a partial file (the
            data-centric output format); otherwise write `path` directly.
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    target = temporary_path(path) if atomic else path
    with open(target, "w") as f:
        json.dump(payload, f, indent=indent, sort_keys=sort_keys, default=json_default)
        if atomic:
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
    if atomic:
        os.replace(target, path)
        fsync_directory(os.path.dirname(os.path.abspath(path)))
