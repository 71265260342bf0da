#!/usr/bin/env python
"""Show or clear Clone's stall state (repos skipped after CLONE_STALL_PASSES passes with no change).

    python include/scripts/stall.py list
    python include/scripts/stall.py clear NAME [NAME ...]

The tasks keep a repo's stall counter in the Airflow Variable ``clone.stall.NAME`` (README: Shared state), so run
this where the Airflow CLI works (same AIRFLOW_HOME / metadata database settings as ``airflow variables``).
It also reads and clears the files under CLONE_WORKSPACE/state (default $AIRFLOW_HOME/clone-workspace) that
Clone's modules write when driven outside a task. Exit status of ``clear``: 0 when every NAME had a state
removed, 1 when some had none, 2 when the metadata database could not be reached.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins"))

from clone.state import stall  # noqa: E402
from clone.config.settings import load_settings  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="repos with no-change passes recorded")
    clear = sub.add_parser("clear", help="forget a repo's stall state so its next pass runs")
    clear.add_argument("names", nargs="+")
    args = parser.parse_args(argv)
    settings = load_settings()
    if args.command == "list":
        found, problem = stall.recorded(settings.workspace)
        if problem:
            print(f"warning: {problem}; only this machine's files are listed", file=sys.stderr)
        for name, (state, where) in sorted(found.items()):
            flag = "STALLED" if settings.stall_passes and state.no_change_passes >= settings.stall_passes else ""
            print(f"{name}\t{state.no_change_passes} no-change pass(es) at {state.head[:12]}\t{flag}\t{where}")
        return 2 if problem else 0
    status = 0
    for name in args.names:
        removed, problem = stall.clear_everywhere(settings.workspace, name)
        if problem:
            print(f"{name}: {problem}; its Variable (if any) is still there", file=sys.stderr)
            status = 2
        if removed:
            print(f"{name}: cleared ({', '.join(removed)})")
        elif not problem:
            print(f"{name}: no stall state", file=sys.stderr)
            status = max(status, 1)
    return status


if __name__ == "__main__":
    sys.exit(main())
