#!/usr/bin/env python
"""Commits across every enabled repo in repos.yaml, newest first, or commit counts per repo.

    python include/scripts/fleet_report.py                          # the last 24 hours
    python include/scripts/fleet_report.py --since "8 hours ago"
    python include/scripts/fleet_report.py --since 2026-11-01 --counts

--since takes anything git log --since takes. Times are shown in the local time zone (TZ).
Reads CLONE_REPOS_FILE (default repos.yaml in the project root) like the DAGs do. A repo with a remote is
read on the remote's branch (what Clone pushed), not the checkout's HEAD; the report ends with what it
read for each repo.
Bad entries are reported on stderr and skipped; a repos.yaml that cannot be read exits 1.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins"))

from clone.errors import ConfigError  # noqa: E402
from clone.fleet.report import fleet_report, render_commits, render_counts  # noqa: E402
from clone.config.settings import load_settings  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--since", default="24 hours ago", metavar="WHEN",
                        help='commits after this ("8 hours ago", "2026-11-24", ...; default "24 hours ago")')
    parser.add_argument("--counts", action="store_true", help="commit counts per repo instead of the commits")
    parser.add_argument("--repos-file", type=Path, metavar="FILE",
                        help="the fleet file (default CLONE_REPOS_FILE)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    if not args.since.strip():
        parser.error("--since must not be empty")
    try:
        settings = load_settings()
        repos_file = args.repos_file.expanduser().resolve() if args.repos_file else settings.repos_file
        if not repos_file.is_file():
            raise ConfigError(f"{repos_file} does not exist: run include/scripts/discover_active_repos.py "
                              "first, or pass --repos-file")
        report = fleet_report(repos_file, args.since, workspace=settings.workspace)
    except ConfigError as e:
        print(f"fleet_report: {e}", file=sys.stderr)
        return 1
    for problem in report.problems:
        print(f"fleet_report: skipping: {problem}", file=sys.stderr)
    print(render_counts(report) if args.counts else render_commits(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
