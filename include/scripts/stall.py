#!/usr/bin/env python
"""Show or clear Clone's stall state (repos skipped after CLONE_STALL_PASSES passes with no change).

    python include/scripts/stall.py list
    python include/scripts/stall.py clear NAME [NAME ...]

Reads CLONE_WORKSPACE (default $AIRFLOW_HOME/clone-workspace) like the DAGs do.
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
        for path in sorted((settings.workspace / "state").glob("*.stall.json")):
            name = path.name.removesuffix(".stall.json")
            state = stall.load(settings.workspace, name)
            flag = "STALLED" if settings.stall_passes and state.no_change_passes >= settings.stall_passes else ""
            print(f"{name}\t{state.no_change_passes} no-change pass(es) at {state.head[:12]}\t{flag}")
        return 0
    status = 0
    for name in args.names:
        if stall.clear(settings.workspace, name):
            print(f"{name}: cleared")
        else:
            print(f"{name}: no stall state", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
