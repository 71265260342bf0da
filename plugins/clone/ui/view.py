"""Fold run records into what the page shows: one row per repo, per-day series for the charts, the
ideas pipeline, and one repo's history. Pure functions over :class:`clone.ui.data.RunRecord`;
every record field is read with a default (a record of another shape costs a dash, not the page)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from clone.notify.events import run_url, task_url
from clone.ui.data import RunRecord

OUTCOMES = ("pushed", "autofixed", "failed", "skipped", "no change", "local")


def _int(value: Any) -> int:
    if type(value) is int:  # the common case, without the cost of a try
        return value
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _entries(record: RunRecord) -> list[Mapping[str, Any]]:
    return [e for e in record.record.get("repos") or () if isinstance(e, Mapping) and e.get("repo")]


def _links(run: RunRecord, entry: Mapping[str, Any], base: str) -> dict[str, str]:
    step = entry.get("failed_step") or "agent_pass"
    index = entry.get("map_index")
    return {"run": run_url(base, run.dag_id, run.run_id),
            "log": task_url(base, run.dag_id, run.run_id, f"repo.{step}", index if isinstance(index, int) else None)}


def _state(entry: Mapping[str, Any], paused: bool, disabled: str | None) -> tuple[str, str]:
    """The repo's standing now: (state, reason)."""
    if disabled is not None:
        return "disabled", disabled
    kind = entry.get("skip_kind")
    if entry.get("outcome") == "skipped" and kind in ("stall", "lease", "budget", "deadline", "kill switch"):
        return {"stall": "stalled", "kill switch": "paused"}.get(kind, kind), str(entry.get("skip_reason") or "")
    if paused:
        return "paused", "the kill switch is on (Airflow Variable clone_paused=true)"
    if entry.get("outcome") == "failed":
        return "failing", str(entry.get("failed_step") or "CI red") + " failed"
    return "active", ""


def fleet_rows(records: Sequence[RunRecord], now: dt.datetime, *, paused: bool, base: str,
               cost_per_mtok: float = 0.0) -> list[dict[str, Any]]:
    """One row per repo seen in ``records`` (oldest first) or disabled in the latest one."""
    last: dict[str, tuple[RunRecord, Mapping[str, Any]]] = {}
    tokens7: dict[str, int] = defaultdict(int)
    tokens30: dict[str, int] = defaultdict(int)
    incidents: dict[str, list[str]] = defaultdict(list)
    week, month = now - dt.timedelta(days=7), now - dt.timedelta(days=30)
    for run in records:
        in7, in30 = run.started >= week, run.started >= month
        for entry in _entries(run):
            repo = str(entry["repo"])
            last[repo] = (run, entry)
            if in30:
                tokens = _int(entry.get("tokens"))
                tokens30[repo] += tokens
                if in7:
                    tokens7[repo] += tokens
            if entry.get("ci") in ("success", "-") and entry.get("outcome") in ("pushed", "autofixed", "no change"):
                incidents[repo] = []  # a clean pass: earlier incidents are behind the repo
            found = entry.get("incidents")
            if found:
                incidents[repo] += [str(i) for i in found]
    latest = next((r.record.get("disabled") for r in reversed(records) if "disabled" in r.record), None)
    disabled = {str(d.get("repo")): str(d.get("reason") or "disabled")
                for d in latest or () if isinstance(d, Mapping) and d.get("repo")}
    rows = []
    for repo in sorted(set(last) | set(disabled)):
        run, entry = last.get(repo, (None, {}))
        state, reason = _state(entry, paused, disabled.get(repo))
        rows.append({
            "repo": repo, "state": state, "reason": reason,
            "when": run.started.isoformat(timespec="minutes") if run else None,
            "outcome": entry.get("outcome", "-"), "commits": _int(entry.get("commits")),
            "sha": entry.get("sha"), "ci": entry.get("ci", "-"), "ci_url": entry.get("ci_url"),
            "autofix": _int(entry.get("autofix")), "incidents": incidents.get(repo, []),
            "tokens_7d": tokens7.get(repo, 0), "tokens_30d": tokens30.get(repo, 0),
            "cost_7d": round(tokens7.get(repo, 0) * cost_per_mtok / 1e6, 2) if cost_per_mtok else None,
            "cost_30d": round(tokens30.get(repo, 0) * cost_per_mtok / 1e6, 2) if cost_per_mtok else None,
            "links": _links(run, entry, base) if run else {}, "pull_url": entry.get("pull_url"),
        })
    return rows


def daily_series(records: Sequence[RunRecord], now: dt.datetime, days: int) -> list[dict[str, Any]]:
    """Per UTC day of the last ``days``: passes by outcome, commits landed, CI green/red, tokens, budget."""
    first = (now - dt.timedelta(days=days - 1)).date()
    series = {first + dt.timedelta(days=i): {"day": (first + dt.timedelta(days=i)).isoformat(),
                                            "passes": dict.fromkeys(OUTCOMES, 0), "commits": 0,
                                            "ci_green": 0, "ci_red": 0, "tokens": 0, "budget": 0}
              for i in range(days)}
    for run in records:
        day = series.get(run.started.astimezone(dt.timezone.utc).date())
        if day is None:
            continue
        day["budget"] += _int(run.record.get("budget_tokens"))
        for entry in _entries(run):
            outcome = entry.get("outcome")
            if outcome in day["passes"]:
                day["passes"][outcome] += 1
            day["commits"] += _int(entry.get("commits"))
            day["tokens"] += _int(entry.get("tokens"))
            ci = entry.get("ci")
            if ci in ("success", "flaky"):
                day["ci_green"] += 1
            elif ci == "failure":
                day["ci_red"] += 1
    return list(series.values())


def repo_history(records: Sequence[RunRecord], repo: str, base: str) -> list[dict[str, Any]]:
    """Every recorded pass of ``repo``, newest first."""
    found = []
    for run in reversed(records):
        for entry in _entries(run):
            if entry["repo"] == repo:
                found.append({"when": run.started.isoformat(timespec="minutes"), "run_id": run.run_id,
                              "dag_id": run.dag_id, **{k: entry.get(k) for k in (
                                  "outcome", "commits", "sha", "ci", "ci_url", "autofix", "tokens",
                                  "skip_kind", "skip_reason", "failed_step", "pull_url")},
                              "incidents": list(entry.get("incidents") or ()), "links": _links(run, entry, base)})
    return found


def ideas(records: Sequence[RunRecord]) -> list[dict[str, Any]]:
    """Each idea as the latest run that worked on it left it."""
    latest: dict[str, dict[str, Any]] = {}
    for run in records:
        for idea in run.record if isinstance(run.record, list) else ():
            if isinstance(idea, Mapping) and idea.get("id"):
                latest[str(idea["id"])] = {**{k: idea.get(k) for k in (
                    "id", "title", "status", "last_error", "retry_at", "repo_name", "repo_path", "github")},
                    "run_id": run.run_id, "when": run.started.isoformat(timespec="minutes")}
    return [latest[k] for k in sorted(latest)]
