#!/usr/bin/env python
"""Show or export what Clone kept in Airflow Variables because repos.yaml or ideas.yaml could not be written
(a read-only or git-synced DAG bundle; README: "Read-only bundles").

    python include/scripts/export_state.py                     # both fragments on stdout
    python include/scripts/export_state.py --repos-out kept-repos.yaml --ideas-out kept-ideas.yaml
    python include/scripts/export_state.py --only ideas --ideas-out ideas.kept.yaml --overwrite

The output is YAML in the files' own format: a ``repos:`` list of the discovered and enrolled checkouts, and
an ``ideas:`` list with, per idea, the keys Clone set (status, last_error, retry_at, repo_path, github,
timestamps) to copy into that idea's entry. An existing file is never replaced without ``--overwrite``; a
file is written in one step (a temporary file renamed over it). Bad Variables are reported on stderr, by
name and field, and left out. Run it where Airflow's metadata database is reachable (the environment of
``include/scripts/airflow_env.sh``, or any Airflow machine of the deployment).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins"))

from clone.errors import ConfigError  # noqa: E402
from clone.fleet.repo_entry import KNOWN_KEYS, validate_entry  # noqa: E402
from clone.ideas.kept_ideas import checked  # noqa: E402
from clone.state import kept  # noqa: E402
from clone.util import yamlio  # noqa: E402


def kept_variables() -> dict[str, str]:
    """Every Variable Clone keeps for the files, as stored (the metadata database, decrypted)."""
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session
    from sqlalchemy import or_, select

    with create_session() as session:
        rows = session.scalars(select(Variable).where(or_(*(Variable.key.startswith(prefix)
                                                            for prefix in kept.KEPT_PREFIXES))))
        return {row.key: row.val for row in rows}


def repos_of(values: dict[str, str], problems: list[str]) -> list[dict[str, Any]]:
    found: list[tuple[str, Any]] = []
    try:
        discovered = kept.parse(kept.DISCOVERED, values.get(kept.DISCOVERED))
        if discovered is not None:
            listed = kept.field(discovered, kept.DISCOVERED, "repos", list, "a list of {path, name} entries")
            found += [(f"Variable {kept.DISCOVERED}: entry {i + 1}", raw) for i, raw in enumerate(listed)]
    except ConfigError as e:
        problems.append(str(e))
    for name in sorted(n for n in values if n.startswith(kept.ENROLLED)):
        try:
            found.append((f"Variable {name}", kept.parse(name, values[name])))
        except ConfigError as e:
            problems.append(str(e))
    repos = []
    for where, raw in found:
        try:
            validate_entry(raw, where)
        except ConfigError as e:
            problems.append(str(e))
            continue
        repos.append({key: raw[key] for key in (*KNOWN_KEYS, *sorted(raw)) if key in raw})  # path first
    return repos


def ideas_of(values: dict[str, str], problems: list[str]) -> list[dict[str, Any]]:
    ideas = []
    for name in sorted(n for n in values if n.startswith(kept.IDEAS)):
        try:
            value = checked(name, kept.parse(name, values[name]))
        except ConfigError as e:
            problems.append(str(e))
            continue
        ideas.append({"id": value["id"], **{k: v for k, v in value["fields"].items() if v is not None}})
    return ideas


def fragment(key: str, items: list[dict[str, Any]], what: str) -> str:
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    head = (f"# Kept by Clone in Airflow Variables (include/scripts/export_state.py, {when}): {what}\n")
    return head + (yamlio.dump_document({key: items}) if items else f"{key}: []\n")


def write(path: Path, text: str, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise SystemExit(f"error: {path} exists; not replacing it (pass --overwrite to replace it)")
    yamlio.atomic_write_text(path, text)
    print(f"wrote {path}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=("repos", "ideas"), help="export one of the two (default both)")
    parser.add_argument("--repos-out", type=Path, help="write the repos.yaml fragment here (default stdout)")
    parser.add_argument("--ideas-out", type=Path, help="write the ideas.yaml fragment here (default stdout)")
    parser.add_argument("--overwrite", action="store_true", help="replace an output file that exists")
    args = parser.parse_args(argv)
    values = kept_variables()
    problems: list[str] = []
    outputs = []
    if args.only in (None, "repos"):
        outputs.append((args.repos_out, fragment("repos", repos_of(values, problems),
                                                 "add these entries to repos.yaml")))
    if args.only in (None, "ideas"):
        outputs.append((args.ideas_out, fragment("ideas", ideas_of(values, problems),
                                                 "copy these keys into the ideas' entries in ideas.yaml")))
    for problem in problems:
        print(f"warning: left out: {problem}", file=sys.stderr)
    for target, _ in outputs:  # before writing any, so a refusal leaves nothing half done
        if target is not None and target.exists() and not args.overwrite:
            raise SystemExit(f"error: {target} exists; not replacing it (pass --overwrite to replace it)")
    for target, text in outputs:
        if target is None:
            sys.stdout.write(text)
        else:
            write(target, text, args.overwrite)
    return 0


if __name__ == "__main__":
    sys.exit(main())
