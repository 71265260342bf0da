#!/usr/bin/env python
"""Discovery alone: find active checkouts under ROOT and add the new ones to repos.yaml.

    python include/scripts/discover_active_repos.py                 # CLONE_CODE_ROOT, CLONE_ACTIVE_DAYS
    python include/scripts/discover_active_repos.py ~/code --days 30

The same scan and merge as the clone_fleet DAG's discover task: entries, keys and comments
already in repos.yaml are kept; only checkouts missing from it are added.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins"))

from clone.fleet.discover import discover  # noqa: E402
from clone.errors import ConfigError  # noqa: E402
from clone.fleet.repos_file import load_fleet, merge_discovered  # noqa: E402
from clone.config.settings import load_settings  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", nargs="?", type=Path, metavar="ROOT",
                        help="the code root to scan (default CLONE_CODE_ROOT)")
    parser.add_argument("--days", type=int, metavar="N",
                        help="active = a HEAD commit in this many days (default CLONE_ACTIVE_DAYS)")
    parser.add_argument("--repos-file", type=Path, metavar="FILE",
                        help="the fleet file to update (default CLONE_REPOS_FILE)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    if args.days is not None and args.days < 1:
        parser.error(f"--days must be at least 1, got {args.days}")
    try:
        settings = load_settings() if None in (args.root, args.days, args.repos_file) else None
        root = args.root.expanduser().resolve() if args.root else settings.code_root
        days = args.days if args.days is not None else settings.active_days
        repos_file = args.repos_file.expanduser().resolve() if args.repos_file else settings.repos_file
        if not root.is_dir():
            raise ConfigError(f"code root {root} is not a directory (pass ROOT or set CLONE_CODE_ROOT)")
        found = discover(root, days)
        print(f"{len(found)} active checkout(s) under {root} (a commit in the last {days} day(s))")
        added = merge_discovered(repos_file, [c.path for c in found])
        entries, problems = load_fleet(repos_file)
    except ConfigError as e:
        print(f"discover_active_repos: {e}", file=sys.stderr)
        return 1
    for path in added:
        print(f"added {path}")
    for problem in problems:
        print(f"discover_active_repos: bad entry (kept, skipped by Clone): {problem}", file=sys.stderr)
    enabled = sum(1 for e in entries if e.enabled)
    print(f"{repos_file}: {len(added)} added, {len(entries)} repo(s) in total ({enabled} enabled)"
          + (f", {len(problems)} bad entr{'y' if len(problems) == 1 else 'ies'}" if problems else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
