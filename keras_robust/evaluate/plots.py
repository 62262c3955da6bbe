"""PNG plots of a robustness report (matplotlib, Agg backend)."""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ImportError(
            'Plots need matplotlib, an optional dependency: pip install "keras_robust[plots]".'
        ) from None

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def line_plot(
    path: str, xs: Sequence[float], ys: Sequence[float], xlabel: str, title: str,
    log_x: bool = False, extra: dict | None = None,
) -> str:
    """Accuracy (in %) against a quantity; `extra` maps labels to (xs, ys) series.

    Returns:
        The path written.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=120)
    ax.plot(xs, 100 * np.asarray(ys), marker="o", label="this model")
    for label, (ex, ey) in (extra or {}).items():
        ax.plot(ex, 100 * np.asarray(ey), marker="s", linestyle="--", label=label)
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(-2, 102)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if extra:
        ax.legend()
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def heatmap(path: str, rows: Sequence[str], columns: Sequence[str], values: np.ndarray,
            title: str, vmin: float = 0.0, vmax: float = 100.0) -> str:
    """A labelled heatmap with each cell's value printed (values in %)."""
    plt = _pyplot()
    values = np.asarray(values, dtype=float)
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(columns), 0.8 + 0.32 * len(rows)), dpi=120)
    image = ax.imshow(values, cmap="viridis", vmin=vmin, vmax=vmax, aspect="auto")
    ax.set_xticks(range(len(columns)), labels=list(columns))
    ax.set_yticks(range(len(rows)), labels=list(rows))
    for i in range(len(rows)):
        for j in range(len(columns)):
            if np.isfinite(values[i, j]):
                ax.text(j, i, f"{values[i, j]:.0f}", ha="center", va="center", fontsize=7,
                        color="white" if values[i, j] < (vmin + vmax) / 2 else "black")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.04)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
