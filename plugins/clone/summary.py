"""The run summary: one row per repo, from the chain's task states and its last result."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

CHAIN = ("agent_pass", "push", "ci_wait", "autofix")
FAILED_STATES = {"failed", "upstream_failed"}
COLUMNS = ("repo", "pass", "verification", "commits", "CI", "autofix", "tokens", "duration", "CI run", "result")


def _pass_state(states: Mapping[str, str], result: Mapping[str, Any] | None) -> str:
    state = states["agent_pass"]
    if state == "success" and result is not None:
        return "changed" if result.get("changed") else "no change"
    return state


def repo_rows(repos: Sequence[Mapping[str, Any]], states: Mapping[str, Any],
              results: Sequence[Mapping[str, Any] | None] = (), group: str = "repo") -> list[dict[str, Any]]:
    """Rows from ``discover``'s repo list, the run's task states (keys ``<group>.<task>_<map index>``)
    and, per repo, the last result its chain returned (None when none did)."""
    rows = []
    for index, repo in enumerate(repos):
        chain = {step: states.get(f"{group}.{step}_{index}") or "none" for step in CHAIN}
        result = results[index] if index < len(results) else None
        result = result or {}
        ci = result.get("ci") or {}
        runs = ci.get("runs") or []
        attempts = result.get("autofix_attempts")
        commits = (1 if result.get("pushed") else 0) + (attempts or 0)
        rows.append({
            "repo": repo.get("name", f"#{index}"),
            "pass": _pass_state(chain, result or None),
            "verification": result.get("verification", "-"),
            "commits": commits if result.get("pushed") else ("local" if result.get("changed") else 0),
            "CI": ("flaky" if result.get("flaky") else ci.get("status", "-")),
            "autofix": attempts if attempts is not None else ("-" if chain["autofix"] != "failed" else "failed"),
            "tokens": result.get("tokens", (result.get("agent") or {}).get("usage", {}).get("total_tokens", 0)),
            "duration": f"{(result.get('agent') or {}).get('duration', 0):.0f}s" if result.get("agent") else "-",
            "CI run": runs[-1].get("html_url") if runs else "-",
            # A red CI that nothing fixed (autofix skipped by the kill switch, say) is a failure too.
            "failed": any(state in FAILED_STATES for state in chain.values())
            or (ci.get("status") == "failure" and chain["autofix"] != "success"),
            **{f"state_{step}": chain[step] for step in CHAIN},
        })
    return rows


def render_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """A Markdown table, readable in the task log and as a DAG run note."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        values = [str(row[c]) for c in COLUMNS[:-1]] + ["FAILED" if row["failed"] else "ok"]
        lines.append("| " + " | ".join(values) + " |")
    failed = [str(row["repo"]) for row in rows if row["failed"]]
    lines.append("")
    lines.append(f"{len(rows)} repo(s), {len(failed)} failed" + (f": {', '.join(failed)}" if failed else ""))
    return "\n".join(lines)
