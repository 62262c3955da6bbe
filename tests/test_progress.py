"""Progress bars: on a terminal only, per batch with an ETA, silent when piped or asked.

The bars come from `keras_robust.progress` (a `keras.utils.Progbar` on
stderr). The tests swap `sys.stderr` for a fake terminal (a StringIO whose
`isatty()` is True) or a plain StringIO (a pipe, a file, a CI log).
"""
import io
import re
import sys

import keras
import numpy as np
import pytest

import keras_robust as kr
from keras_robust import progress as _progress

ANSI = re.compile("\x1b\\[[0-9;]*m")


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _redraws(text: str) -> list[str]:
    """The bar's successive states (each redraw starts with a carriage return)."""
    return [ANSI.sub("", part).replace("\b", "") for part in text.split("\r")[1:]]


@pytest.fixture
def tiny():
    """12 images a linear model classifies correctly (labels are its own predictions),
    so every image is attacked: 3 batches of 4."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(10)], name="tiny")
    x = np.random.default_rng(0).random((12, 8, 8, 3), "float32")
    y = np.argmax(model.predict(x, verbose=0), -1)
    return model, x, y


def _report(model, x, y, **kwargs):
    return kr.evaluate.robustness_report(model, (x, y), attacks=["fgsm"], batch_size=4,
                                         **kwargs)


def test_report_bar_on_a_terminal_advances_per_batch_with_an_eta(tiny, monkeypatch):
    monkeypatch.delenv(_progress.ENVIRONMENT_VARIABLE, raising=False)
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    report = _report(*tiny)
    monkeypatch.undo()
    assert report.clean_accuracy == 1.0
    states = [s for s in _redraws(terminal.getvalue()) if s.startswith("[report tiny] FGSM ")]
    counts = [re.search(r"FGSM\s+(\d+)/3", s).group(1) for s in states]
    assert counts == ["0", "1", "2", "3"], states  # drawn empty, then once per batch
    assert all("ETA" in s for s in states[:-1]), states  # every unfinished state shows its ETA
    assert re.search(r"ETA \d+s", states[1]), states[1]
    assert "ETA" not in states[-1] and "/batch" in states[-1]  # done: elapsed and time per batch
    assert "[report tiny] FGSM: " in terminal.getvalue()  # the result line
    assert "tiny: clean 100.0%" in terminal.getvalue()  # and the summary


def test_report_prints_result_lines_but_no_bar_when_stderr_is_not_a_terminal(tiny, monkeypatch):
    monkeypatch.delenv(_progress.ENVIRONMENT_VARIABLE, raising=False)
    piped = io.StringIO()
    monkeypatch.setattr(sys, "stderr", piped)
    _report(*tiny)
    monkeypatch.undo()
    text = piped.getvalue()
    assert "ETA" not in text and "\r" not in text and "━" not in text  # no bar
    assert "[report tiny] FGSM: " in text  # the result line stays in the log
    assert "tiny: clean 100.0%" in text  # and the summary


def test_report_progress_false_prints_nothing_even_on_a_terminal(tiny, monkeypatch):
    monkeypatch.setenv(_progress.ENVIRONMENT_VARIABLE, "1")  # not even when forced
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    _report(*tiny, progress=False)
    monkeypatch.undo()
    assert terminal.getvalue() == ""


def test_environment_variable_forces_or_hides_progress(monkeypatch):
    piped, terminal = io.StringIO(), FakeTerminal()
    monkeypatch.setenv(_progress.ENVIRONMENT_VARIABLE, "always")
    monkeypatch.setattr(sys, "stderr", piped)
    with _progress.bar("forced ", 2) as bar:
        bar.update()
        bar.update()
    assert "2/2" in ANSI.sub("", piped.getvalue())
    monkeypatch.setenv(_progress.ENVIRONMENT_VARIABLE, "never")
    monkeypatch.setattr(sys, "stderr", terminal)
    _progress.line("hidden")
    with _progress.bar("hidden ", 2) as bar:
        bar.update()
    assert terminal.getvalue() == ""
    monkeypatch.setenv(_progress.ENVIRONMENT_VARIABLE, "sometimes")
    with pytest.raises(ValueError, match="KERAS_ROBUST_PROGRESS"):
        _progress.stream(True)


def test_a_failing_loop_ends_the_bar_line(monkeypatch):
    monkeypatch.delenv(_progress.ENVIRONMENT_VARIABLE, raising=False)
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with pytest.raises(RuntimeError):
        with _progress.bar("dies ", 3) as bar:
            bar.update()
            raise RuntimeError("boom")
    assert terminal.getvalue().endswith("\n")


def test_corruption_accuracy_and_enhance_bars(monkeypatch):
    monkeypatch.delenv(_progress.ENVIRONMENT_VARIABLE, raising=False)
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(10)])
    images = np.random.default_rng(0).integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    kr.corruptions.corruption_accuracy(model, images, np.zeros(6, int), names=["snow"],
                                       severities=[1, 2], batch_size=3)
    kr.datacentric.enhance(images, np.arange(6), [model], ratio=(0, 1, 1), iterations=1,
                           batch_size=2, shard_size=6)
    monkeypatch.undo()
    states = _redraws(terminal.getvalue())
    snow = [re.search(r"snow\s+(\d+)/4", s).group(1) for s in states if "snow" in s]
    assert snow == ["0", "1", "2", "3", "4"]  # 2 severities x 2 batches
    shard = [s for s in states if s.startswith("[enhance] shard 1/1")]
    # the corrupted part, then the adversarial part's batches
    assert len(shard) >= 3 and re.search(r"(\d+)/\1", shard[-1]) and "ETA" in shard[1]
    assert "[enhance] shard 0 (6 examples) done" in terminal.getvalue()
