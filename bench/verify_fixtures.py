#!/usr/bin/env python
"""Local verification over the ecosystem fixtures: detected setup, checks and verdicts, and setup time.

    .venv/bin/python bench/verify_fixtures.py                 # every fixture
    .venv/bin/python bench/verify_fixtures.py --only uv,nox   # some (names as in the table, a prefix is enough)

Builds each project of ``tests/ecosystems.py`` in a temporary directory (dependencies from PyPI and npm
through their normal clients, Go's from a module proxy on disk) and runs it as a pass does: setup (timed
cold, then again cached), the detected checks, a baseline on the untouched commit, the verdict on the
healthy code, then the verdict on deliberately broken code. Prints a Markdown table and exits 1 when a
fixture does not get the expected verdicts (healthy: passed, possibly with pre-existing red; broken: failed).
A fixture whose toolchain is missing here is listed as skipped.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
for _path in (str(PROJECT / "plugins"), str(PROJECT)):
    if _path not in sys.path:
        sys.path.insert(0, _path)


def _short(command: str, base: Path) -> str:
    """A command with the temporary workspace shortened to ``<ws>``, for the table."""
    return command.replace(str(base / "ws"), "<ws>")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated fixture names (prefixes)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    from tests import ecosystems

    wanted = [w.strip().lower() for w in args.only.split(",") if w.strip()]
    names = [n for n in ecosystems.FIXTURES if not wanted or any(n.lower().startswith(w) for w in wanted)]
    path = ecosystems.tools_path()
    root = Path(tempfile.mkdtemp(prefix="clone-verify-bench-"))
    rows, missed = [], []
    try:
        for index, name in enumerate(names):
            base = root / f"f{index}"
            base.mkdir()
            try:
                _, out = ecosystems.run_fixture(name, base, path)
            except ecosystems.Missing as e:
                rows.append((name, "skipped: " + str(e), "", "", "", "", ""))
                continue
            healthy_ok = not out.healthy.regressions and out.healthy.label.startswith("passed")
            broken_ok = bool(out.broken.regressions)
            if not (healthy_ok and broken_ok):
                missed.append(name)
            rows.append((name, "; ".join(_short(s, base) for s in out.steps) or "(none)",
                         "; ".join(_short(c, base) for c in out.checks) or "(none)",
                         out.healthy.label, out.broken.label + " (" + ", ".join(
                             r.name for r in out.broken.regressions) + ")" if out.broken.regressions
                         else out.broken.label, f"{out.cold:.2f} s", f"{out.cached:.3f} s ({out.again.status})"))
            print(f"done: {name}", file=sys.stderr, flush=True)
    finally:
        if args.keep:
            print(f"kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    header = ("fixture", "detected setup", "checks", "verdict on healthy", "verdict on broken",
              "setup cold", "setup cached")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
    if missed:
        print(f"\nwrong verdict: {', '.join(missed)}", file=sys.stderr)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
