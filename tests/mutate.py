"""Mutation runner: applies each deliberate one-line change of tests/mutations.toml and
checks that the entry's tests catch it.

Not part of the test suite or of CI: a tool to rerun when the maths changes. It

1. copies the repository's files (`git ls-files --cached --others --exclude-standard`,
   so uncommitted edits included) into a temporary scratch directory, once; the
   working tree is never written;
2. checks that `import keras_robust` in the scratch copy (PYTHONPATH=scratch,
   cwd=scratch) imports the scratch copy, not an installed one;
3. unless --skip-baseline, runs the union of the selected entries' tests once on the
   unmutated copy and stops if any fails (a mutant "caught" by a test that already
   fails proves nothing);
4. for each entry, replaces `original` (which must occur exactly once in `file`) by
   `replacement`, runs `python -m pytest -x -q -p no:cacheprovider --slow <tests>` in
   the scratch copy, restores the file, and records the verdict: "caught" (exit 1,
   a test failed), "caught (error)" (exit 2, collection or import error), "caught
   (timeout)", "survived" (exit 0), or "broken (exit N)" (pytest could not run the
   tests: a catalogue error);
5. prints one line per entry as it goes and a closing summary, and exits non-zero
   when a non-equivalent entry survived, an `equivalent` entry was caught, or an
   entry was broken.

Run from the repository root (the interpreter is the one running this script):

    .venv/bin/python tests/mutate.py                       # every entry
    .venv/bin/python tests/mutate.py --list                # the catalogue, nothing run
    .venv/bin/python tests/mutate.py --only wilson-interval-centre-drops-z-squared
    .venv/bin/python tests/mutate.py --area report --skip-baseline --json /tmp/m.json

Python 3.11+ (tomllib); no third-party dependencies.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

if sys.version_info < (3, 11):  # pragma: no cover - depends on the interpreter
    raise SystemExit(
        f"tests/mutate.py needs Python 3.11+ (tomllib); this is {sys.version.split()[0]}.")

import tomllib

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = ROOT / "tests" / "mutations.toml"
AREAS = ("attacks", "defences", "report", "corruptions", "datacentric", "backbones", "data")
REQUIRED = ("name", "area", "file", "original", "replacement", "tests", "why")
PYTEST_FLAGS = ("-x", "-q", "-p", "no:cacheprovider", "--slow")


class CatalogueError(Exception):
    """A malformed catalogue entry, or one whose `original` is not in its file exactly once."""


@dataclass(frozen=True)
class Mutation:
    """One catalogue entry (see the header of tests/mutations.toml)."""

    name: str
    area: str
    file: str
    original: str
    replacement: str
    tests: tuple[str, ...]
    why: str
    equivalent: str | None = None


@dataclass
class Outcome:
    """What running one mutation gave."""

    name: str
    area: str
    verdict: str
    seconds: float
    expected: str
    output_tail: str = ""

    @property
    def ok(self) -> bool:
        """Whether the verdict is the one the catalogue expects."""
        if self.expected == "survived":
            return self.verdict == "survived"
        return self.verdict.startswith("caught")


def load_catalogue(path: Path = CATALOGUE) -> list[Mutation]:
    """The catalogue's entries, with the keys and areas checked."""
    with open(path, "rb") as f:
        data = tomllib.load(f)
    entries = []
    for index, raw in enumerate(data.get("mutation", [])):
        label = raw.get("name", f"entry #{index + 1}")
        missing = [key for key in REQUIRED if key not in raw]
        if missing:
            raise CatalogueError(f"{label}: missing keys {missing}.")
        unknown = set(raw) - set(REQUIRED) - {"equivalent"}
        if unknown:
            raise CatalogueError(f"{label}: unknown keys {sorted(unknown)}.")
        if raw["area"] not in AREAS:
            raise CatalogueError(f"{label}: area {raw['area']!r} is not one of {AREAS}.")
        if not raw["tests"]:
            raise CatalogueError(f"{label}: lists no tests.")
        entries.append(Mutation(**{**raw, "tests": tuple(raw["tests"])}))
    names = [e.name for e in entries]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise CatalogueError(f"duplicate names: {duplicates}.")
    return entries


def select(entries: list[Mutation], only: list[str] | None, area: str | None) -> list[Mutation]:
    """The entries named by --only (all when None) within --area (all when None)."""
    if only:
        unknown = sorted(set(only) - {e.name for e in entries})
        if unknown:
            raise CatalogueError(f"--only names no entry {unknown}; see --list.")
        entries = [e for e in entries if e.name in only]
    if area:
        entries = [e for e in entries if e.area == area]
    return entries


def copy_repository(scratch: Path) -> int:
    """Copies the repository's tracked and untracked, not ignored, files into `scratch`."""
    listing = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT, check=True, capture_output=True).stdout.decode()
    copied = 0
    for relative in filter(None, listing.split("\0")):
        source = ROOT / relative
        if not source.is_file():  # deleted in the working tree, or a submodule
            continue
        target = scratch / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        copied += 1
    return copied


def scratch_env(scratch: Path) -> dict[str, str]:
    """The environment of every child: the scratch copy first on the path, no bytecode
    (a .pyc of a mutant must never outlive it)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(scratch)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def check_imports_scratch(scratch: Path) -> None:
    """Fails loudly unless `import keras_robust` in the scratch copy imports that copy."""
    done = subprocess.run(
        [sys.executable, "-c", "import keras_robust; print(keras_robust.__file__)"],
        cwd=scratch, env=scratch_env(scratch), capture_output=True, text=True)
    lines = done.stdout.strip().splitlines()
    where = Path(lines[-1]).resolve() if done.returncode == 0 and lines else None
    if where is None or not where.is_relative_to(scratch.resolve()):
        raise SystemExit(
            "mutate.py: `import keras_robust` in the scratch copy did not import the scratch "
            f"copy (got {where}; exit {done.returncode}):\n{done.stderr[-2000:]}\n"
            "Mutations would be applied to files the tests never load; stopping.")


def run_pytest(scratch: Path, tests: tuple[str, ...], timeout: float) -> tuple[int | None, str]:
    """Runs pytest on `tests` in the scratch copy: (exit code or None on timeout, output)."""
    command = [sys.executable, "-m", "pytest", *PYTEST_FLAGS, *tests]
    process = subprocess.Popen(command, cwd=scratch, env=scratch_env(scratch),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout)
        return process.returncode, output
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # pytest and anything it started
        output, _ = process.communicate()
        return None, output


def verdict_of(code: int | None) -> str:
    """The verdict of a pytest exit code (None: the run timed out)."""
    if code is None:
        return "caught (timeout)"
    return {0: "survived", 1: "caught", 2: "caught (error)"}.get(code, f"broken (exit {code})")


def baseline(scratch: Path, entries: list[Mutation], timeout: float) -> None:
    """Runs every selected test once on the unmutated copy; stops if any fails."""
    tests = tuple(dict.fromkeys(t for e in entries for t in e.tests))
    print(f"baseline: {len(tests)} tests on the unmutated copy ...", flush=True)
    start = time.monotonic()
    code, output = run_pytest(scratch, tests, timeout * max(1, len(entries)))
    if code != 0:
        raise SystemExit(
            f"mutate.py: the baseline failed ({verdict_of(code)}); a mutant 'caught' by a test "
            f"that already fails proves nothing. Fix the tests first.\n{output[-4000:]}")
    print(f"baseline: passed in {time.monotonic() - start:.1f} s", flush=True)


def apply_and_run(scratch: Path, entry: Mutation, timeout: float) -> Outcome:
    """Applies one mutation in the scratch copy, runs its tests, restores the file."""
    path = scratch / entry.file
    if not path.is_file():
        raise CatalogueError(f"{entry.name}: file {entry.file!r} does not exist.")
    source = path.read_text()
    count = source.count(entry.original)
    if count != 1:
        raise CatalogueError(
            f"{entry.name}: `original` occurs {count} times in {entry.file} (expected exactly "
            "once); update the entry to the current code.")
    start = time.monotonic()
    try:
        path.write_text(source.replace(entry.original, entry.replacement))
        code, output = run_pytest(scratch, entry.tests, timeout)
    finally:
        path.write_text(source)
    expected = "survived" if entry.equivalent else "caught"
    return Outcome(entry.name, entry.area, verdict_of(code), time.monotonic() - start, expected,
                   output[-3000:])


def report_line(outcome: Outcome) -> str:
    """One line per entry: name, area, verdict (flagged when unexpected), seconds."""
    flag = "" if outcome.ok else "   <-- UNEXPECTED"
    if outcome.expected == "survived" and outcome.ok:
        flag = "   (equivalent, expected)"
    return (f"{outcome.name:<52} {outcome.area:<12} {outcome.verdict:<18} "
            f"{outcome.seconds:7.1f} s{flag}")


def summarise(outcomes: list[Outcome], seconds: float) -> str:
    """The closing summary: N caught, M survived, K equivalent in T s (plus problems)."""
    caught = sum(o.verdict.startswith("caught") for o in outcomes if o.expected == "caught")
    survived = sum(o.verdict == "survived" for o in outcomes if o.expected == "caught")
    equivalent = sum(o.ok for o in outcomes if o.expected == "survived")
    line = f"{caught} caught, {survived} survived, {equivalent} equivalent in {seconds:.0f} s"
    problems = [o.name for o in outcomes if not o.ok]
    if problems:
        line += f"\nunexpected verdicts: {', '.join(problems)}"
    return line


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(
        description="Apply each mutation of tests/mutations.toml in a scratch copy and run its "
                    "tests.")
    parser.add_argument("--only", nargs="+", action="extend", metavar="NAME",
                        help="run only these entries (repeatable)")
    parser.add_argument("--area", choices=AREAS, help="run only the entries of this area")
    parser.add_argument("--list", action="store_true", help="list the entries and exit")
    parser.add_argument("--skip-baseline", action="store_true",
                        help="do not run the unmutated tests first")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="seconds per entry before it counts as caught (timeout)")
    parser.add_argument("--json", metavar="PATH", help="also write the outcomes as JSON")
    parser.add_argument("--show", action="store_true",
                        help="print the end of pytest's output for every entry, not only "
                             "for unexpected verdicts")
    parser.add_argument("--catalogue", type=Path, default=CATALOGUE, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def run_all(scratch: Path, entries: list[Mutation], args: argparse.Namespace) -> list[Outcome]:
    """Copies, checks the import, runs the baseline and every mutation; prints as it goes."""
    print(f"copied {copy_repository(scratch)} files to {scratch}", flush=True)
    check_imports_scratch(scratch)
    if not args.skip_baseline:
        baseline(scratch, entries, args.timeout)
    outcomes = []
    for entry in entries:
        outcome = apply_and_run(scratch, entry, args.timeout)
        outcomes.append(outcome)
        print(report_line(outcome), flush=True)
        if args.show or not outcome.ok:
            print("    " + outcome.output_tail[-800:].replace("\n", "\n    "), flush=True)
    return outcomes


def main(argv: list[str] | None = None) -> int:
    """Runs the selected mutations; returns the exit status (0: every verdict as expected)."""
    args = parse_args(argv)
    try:
        entries = select(load_catalogue(args.catalogue), args.only, args.area)
    except CatalogueError as error:
        print(f"mutate.py: {error}", file=sys.stderr)
        return 2
    if args.list:
        for e in entries:
            print(f"{e.name:<52} {e.area:<12} {e.file}" + ("  [equivalent]" if e.equivalent else ""))
        return 0
    if not entries:
        print("mutate.py: no entry selected.", file=sys.stderr)
        return 2
    start = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix="keras_robust-mutate-"))
    try:
        outcomes = run_all(scratch, entries, args)
    except CatalogueError as error:
        print(f"mutate.py: {error}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    seconds = time.monotonic() - start
    print(summarise(outcomes, seconds))
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"seconds": seconds, "outcomes": [o.__dict__ | {"ok": o.ok} for o in outcomes]},
            indent=2))
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
