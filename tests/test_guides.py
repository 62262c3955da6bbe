"""The documentation site: every guide's code runs, and `mkdocs build --strict` passes.

Each page of docs/guides/ is run as its reader would run it: its ```python
blocks in order, in one namespace, in a fresh working directory. A block
whose first line is `# doc: skip: <why>` is not run (multi-machine launches
and the like); the reason is required. Blocks fenced with anything after
`python` (e.g. ```python title="...") are not extracted either, so a page
must mark a skipped block with the comment, where the reader sees why.
"""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GUIDES = os.path.join(ROOT, "docs", "guides")
PAGES = sorted(name for name in os.listdir(GUIDES) if name.endswith(".md"))
SKIP = "# doc: skip"
_FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def python_blocks(text: str) -> list[tuple[int, str]]:
    """The runnable ```python blocks of a page: (first line number, code) in order.

    Raises:
        ValueError: a block is skipped without saying why.
    """
    blocks = []
    for match in _FENCE.finditer(text):
        code = match.group(1)
        line = text.count("\n", 0, match.start()) + 2
        first = code.lstrip().splitlines()[0] if code.strip() else ""
        if first.startswith(SKIP):
            reason = first[len(SKIP):].lstrip(":").strip()
            if not reason:
                raise ValueError(f"line {line}: `{SKIP}` must say why, e.g. `{SKIP}: needs two machines`")
            continue
        blocks.append((line, code))
    return blocks


def test_block_extraction_runs_blocks_in_order_and_needs_a_reason_to_skip():
    page = (
        "text\n```python\na = 1\n```\n\n```bash\nexit 1\n```\n"
        "```python\n# doc: skip: needs two machines\nraise SystemExit\n```\n"
        "```python\nb = a + 1\n```\n"
    )
    assert [code for _, code in python_blocks(page)] == ["a = 1\n", "b = a + 1\n"]
    assert [line for line, _ in python_blocks(page)] == [3, 14]          # first code lines
    with pytest.raises(ValueError, match="must say why"):
        python_blocks("```python\n# doc: skip\nx = 1\n```\n")


def test_every_guide_has_code_that_runs():
    assert PAGES, "docs/guides/ has no pages"
    for page in PAGES:
        with open(os.path.join(GUIDES, page)) as f:
            assert python_blocks(f.read()), f"{page} has no runnable ```python block"


# Runs one page's blocks in order in one namespace (a fresh interpreter per page).
_RUNNER = """
import sys
sys.path.insert(0, sys.argv[1])
from tests.test_guides import python_blocks

page, name = sys.argv[2], sys.argv[3]
with open(page) as f:
    blocks = python_blocks(f.read())
namespace = {"__name__": "__guide__"}
for line, code in blocks:
    try:
        exec(compile(code, f"docs/guides/{name}:{line}", "exec"), namespace)
    except Exception as error:
        sys.exit(f"docs/guides/{name}: the block at line {line} failed: "
                 f"{type(error).__name__}: {error}")
"""


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES)
def test_guide_code_runs(page, tmp_path):
    # Each page runs in its own interpreter, as in a reader's fresh session: a page
    # creates strategies and models freely, and a second MirroredStrategy in the
    # test process would break the later tests' collective ops.
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", _RUNNER, ROOT, os.path.join(GUIDES, page), page],
                          cwd=tmp_path, capture_output=True, text=True, timeout=1500,
                          env=environment)
    assert done.returncode == 0, f"{done.stderr[-4000:]}"


def test_griffe_extension_fences_doctest_runs():
    sys.path.insert(0, os.path.join(ROOT, "docs", "_ext"))
    try:
        if importlib.util.find_spec("griffe") is None:
            pytest.skip("griffe is not installed (pip install -e '.[docs]')")
        from griffe_keras_robust import fence_doctests
    finally:
        sys.path.pop(0)
    text = "Example:\n\n>>> x = [1, 2]\n>>> x\n[1, 2]\n\n```python\n>>> inside = 1\n```\nafter"
    assert fence_doctests(text) == (
        "Example:\n\n```pycon\n>>> x = [1, 2]\n>>> x\n[1, 2]\n```\n\n"
        "```python\n>>> inside = 1\n```\nafter"
    )


def test_mkdocs_build_strict(tmp_path):
    missing = [name for name in ("mkdocs", "mkdocstrings", "mkdocstrings_handlers.python")
               if _find(name) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed: pip install -e '.[docs]' to build the site")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])),
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    for page in ["guides/getting-started", "api/attacks", "results/reproduction"]:
        assert (tmp_path / "site" / page / "index.html").exists(), page
    for page in (tmp_path / "site" / "api").glob("*/index.html"):   # a moved module leaves a bare heading
        members = re.findall(r'id="keras_robust\.[A-Za-z_.0-9]+"', page.read_text())
        # the module's own id and at least one member (MART's page: the module and MARTModel)
        assert len(members) > 1, f"api/{page.parent.name}: only {members} rendered"
    attacks = (tmp_path / "site" / "api" / "attacks" / "index.html").read_text()
    for name in ["pgd", "fgsm", "apgd", "square", "fab", "cw_l2"]:
        assert f'id="keras_robust.attacks.{name}"' in attacks, f"kr.attacks.{name} is not in the API reference"


def _find(name: str):
    try:
        return importlib.util.find_spec(name)
    except ModuleNotFoundError:
        return None
