"""What a ``clone_fleet`` run records for the fleet page and the notifications: one small JSON-safe dict
(XCom key ``fleet_record`` of the summary task) with one entry per repo the run worked on, the repos
that were disabled, and the run's token budget. The chain results are read key by key with defaults:
older runs, and results of a newer shape, must not break the page."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

RECORD_KEY = "fleet_record"
#: XCom key of ``discover``: the repos.yaml entries it left out (``enabled: false``), with why.
DISABLED_KEY = "disabled"
RECORD_VERSION = 1
OUTCOMES = ("pushed", "autofixed", "failed", "skipped", "no change", "local")
CHAIN = ("agent_pass", "push", "ci_wait", "autofix", "land")  # as clone.workflow.summary.CHAIN
REASON_MAX_CHARS = 300


def _get(value: Any, key: str, default: Any = None) -> Any:
    """``value[key]`` for a dict, ``value.key`` for an object (a typed result), else ``default``."""
    if isinstance(value, Mapping):
        return value.get(key, default)
    return getattr(value, key, default) if value is not None else default


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def outcome(row: Mapping[str, Any]) -> str:
    """One word for how a repo's chain ended: one of :data:`OUTCOMES` (a summary row in, see
    ``clone.workflow.summary.repo_rows``)."""
    if row.get("failed"):
        return "failed"
    if row.get("skipped_step") == "agent_pass" or row.get("pass") == "skipped":
        return "skipped"
    if _int(row.get("autofix")) > 0:
        return "autofixed"
    if isinstance(row.get("commits"), int) and row["commits"] > 0:
        return "pushed"
    if row.get("commits") == "local":
        return "local"
    return "no change"


def _ci_url(ci: Any) -> str | None:
    runs = _get(ci, "runs") or []
    last = runs[-1] if isinstance(runs, Sequence) and runs else None
    return _get(last, "html_url") or _get(ci, "html_url")


def _incidents(result: Any, row: Mapping[str, Any]) -> list[str]:
    """Incidents the chain recorded: those its result lists, and the one a failed pass or push records
    in INCIDENTS.md (the task failed, so no result of it says so)."""
    found = [str(item)[:REASON_MAX_CHARS] for item in (_get(result, "incidents") or []) if item]
    if row.get("state_agent_pass") == "failed":
        found.append("agent-failure: the pass failed (see the agent_pass log)")
    elif row.get("state_push") == "failed":
        found.append("push: the push failed (see the push log)")
    return found


def repo_entry(index: int, row: Mapping[str, Any], result: Any) -> dict[str, Any]:
    """The record of one repo's chain in this run."""
    ci = _get(result, "ci") or {}
    pull = _get(result, "pull") or {}
    failed_step = next((step for step in CHAIN if row.get(f"state_{step}") == "failed"), None)
    commits = row.get("commits")
    return {
        "repo": str(row.get("repo", f"#{index}")),
        "map_index": index,
        "outcome": outcome(row),
        "pass": str(row.get("pass", "-")),
        "commits": commits if isinstance(commits, int) else 0,
        "sha": _get(result, "landed_sha") or _get(result, "pushed_sha") or _get(result, "head_sha"),
        "branch": _get(result, "push_branch") or _get(result, "branch"),
        "github": _get(result, "github"),
        "ci": str(_get(ci, "status") or ("flaky" if row.get("CI") == "flaky" else "-")),
        "ci_url": _ci_url(ci),
        "flaky": bool(_get(result, "flaky")),
        "autofix": _int(row.get("autofix")),
        "autofix_failed": row.get("state_autofix") == "failed",
        "tokens": _int(row.get("tokens")),
        "failed_step": failed_step,
        "skip_kind": row.get("skip_kind"),
        "skip_reason": (str(row["skip_reason"])[:REASON_MAX_CHARS] if row.get("skip_reason") else None),
        "incidents": _incidents(result, row),
        "pull_url": _get(pull, "html_url"),
    }


def fleet_record(rows: Sequence[Mapping[str, Any]], results: Sequence[Any], *,
                 disabled: Sequence[Mapping[str, Any]] = (), budget_tokens: int = 0,
                 paused: bool = False) -> dict[str, Any]:
    """The run's record: ``rows`` are the summary's rows, ``results`` per repo the chain's last result."""
    repos = [repo_entry(i, row, results[i] if i < len(results) else None) for i, row in enumerate(rows)]
    return {
        "v": RECORD_VERSION,
        "repos": repos,
        "disabled": [{"repo": str(_get(d, "repo", "")), "reason": str(_get(d, "reason", "") or "")}
                     for d in disabled if _get(d, "repo")],
        "budget_tokens": _int(budget_tokens),
        "paused": bool(paused),
    }


def compact_tokens(tokens: int) -> str:
    """``950``, ``41k``, ``1.2M``."""
    if tokens >= 1_000_000:
        return f"{tokens / 1_000_000:.1f}M"
    if tokens >= 1000:
        return f"{tokens / 1000:.0f}k"
    return str(tokens)


def headline(rows: Sequence[Mapping[str, Any]]) -> str:
    """The run note's first line: ``3 repos: 2 pushed, 1 autofixed, 0 failed; 41k tokens`` (skipped,
    unchanged and local-only repos are named only when there are some)."""
    counts = {name: 0 for name in OUTCOMES}
    for row in rows:
        counts[outcome(row)] += 1
    parts = [f"{counts['pushed']} pushed", f"{counts['autofixed']} autofixed", f"{counts['failed']} failed"]
    parts += [f"{counts[name]} {name}" for name in ("skipped", "no change", "local") if counts[name]]
    tokens = sum(_int(row.get("tokens")) for row in rows)
    noun = "repo" if len(rows) == 1 else "repos"
    return f"{len(rows)} {noun}: {', '.join(parts)}; {compact_tokens(tokens)} tokens"
