"""The run summary: one row per repo with the state of each link of its chain."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

CHAIN = ("agent_pass", "push", "ci_wait", "autofix")
FAILED_STATES = {"failed", "upstream_failed"}


def repo_rows(repos: Sequence[Mapping[str, Any]], states: Mapping[str, Any],
              group: str = "repo") -> list[dict[str, Any]]:
    """Rows from ``discover``'s repo list and the run's task states (keys ``<group>.<task>_<map index>``)."""
    rows = []
    for index, repo in enumerate(repos):
        row: dict[str, Any] = {"repo": repo.get("name", f"#{index}")}
        for step in CHAIN:
            row[step] = states.get(f"{group}.{step}_{index}") or "none"
        row["failed"] = any(row[step] in FAILED_STATES for step in CHAIN)
        rows.append(row)
    return rows


def render_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """A Markdown table, readable in the task log and as a DAG run note."""
    header = ["repo", *CHAIN, "result"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        result = "FAILED" if row["failed"] else "ok"
        lines.append("| " + " | ".join([str(row["repo"]), *(str(row[s]) for s in CHAIN), result]) + " |")
    failed = [str(row["repo"]) for row in rows if row["failed"]]
    lines.append("")
    lines.append(f"{len(rows)} repo(s), {len(failed)} failed" + (f": {', '.join(failed)}" if failed else ""))
    return "\n".join(lines)
