"""PNG plots of a robustness report (matplotlib, Agg backend)."""
from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

__all__ = ["budget_label", "heatmap", "line_plot"]


def pyplot() -> Any:
    """`matplotlib.pyplot` on the non-interactive Agg backend, or an ImportError saying how to install it."""
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
    xtick_labels: Sequence[str] | None = None, label: str = "this model",
) -> str:
    """Accuracy (in %) against a quantity; `extra` maps labels to (xs, ys) series.

    Args:
        path: the PNG to write.
        xs: the measured quantities (budgets in /255, step counts).
        ys: accuracies in [0, 1], one per x.
        xlabel: the x axis' label.
        title: the plot's title.
        log_x: a log x axis.
        extra: more series, label -> (xs, ys).
        xtick_labels: one label per x: the x axis is then ticked at the
            measured xs only (no minor ticks or labels), e.g. "8/255".
        label: the legend's name of the `ys` series (shown with `extra`).

    Returns:
        The path written.

    Example:

    >>> import tempfile
    >>> path = line_plot(os.path.join(tempfile.mkdtemp(), "eps.png"), [4, 8], [0.5, 0.3],
    ...                  "epsilon", "demo", log_x=True, xtick_labels=["4/255", "8/255"])
    >>> os.path.getsize(path) > 0
    True
    """
    if xtick_labels is not None and len(xtick_labels) != len(xs):
        raise ValueError(f"`xtick_labels` needs one label per x: got {len(xtick_labels)} "
                         f"labels for {len(xs)} values.")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=120)
    ax.plot(xs, 100 * np.asarray(ys), marker="o", label=label)
    for label, (ex, ey) in (extra or {}).items():
        ax.plot(ex, 100 * np.asarray(ey), marker="s", linestyle="--", label=label)
    if log_x:
        ax.set_xscale("log")
    elif all(float(x).is_integer() for x in xs):  # epochs, steps: no ticks between them
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if xtick_labels is not None:
        from matplotlib.ticker import NullFormatter, NullLocator

        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xticks(list(xs), labels=list(xtick_labels))
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


def budget_label(epsilon: float) -> str:
    """An L-inf budget on the [0, 1] scale as the /255 value people quote.

    Args:
        epsilon: the budget, e.g. 8 / 255.

    Returns:
        "8/255"; fractions of a level keep two decimals at most ("0.5/255").

    Example:

    >>> budget_label(8 / 255), budget_label(2 / 255 / 4)
    ('8/255', '0.5/255')
    """
    return f"{round(255 * float(epsilon), 2):g}/255"


def heatmap(path: str, rows: Sequence[str], columns: Sequence[str], values: np.ndarray,
            title: str, vmin: float = 0.0, vmax: float = 100.0) -> str:
    """A labelled heatmap with each cell's value printed (values in %).

    Args:
        path: the PNG to write.
        rows: one label per row of `values`.
        columns: one label per column of `values`.
        values: [rows, columns] numbers (NaN cells are left blank).
        title: the plot's title.
        vmin: the value at the bottom of the colour scale.
        vmax: the value at the top of the colour scale.

    Returns:
        The path written.

    Example:

    >>> import tempfile
    >>> path = heatmap(os.path.join(tempfile.mkdtemp(), "h.png"), ["fog", "snow"], ["1", "2"],
    ...                np.array([[90.0, 80.0], [70.0, np.nan]]), "accuracy (%)")
    >>> os.path.getsize(path) > 0
    True
    """
    plt = pyplot()
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
