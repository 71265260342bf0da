"""The events that notify, read from a run's fleet record (see ``clone.workflow.fleet_record``) and from
the ideas a run worked on. Pure functions: a healthy run yields no event."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

#: Every kind of event, in the order a digest lists them.
KINDS = ("chain failed", "incident", "stalled", "skipped repeatedly", "budget reached", "idea blocked")
#: Skip kinds that, seen in this run and the previous one, make "skipped repeatedly".
REPEAT_SKIPS = frozenset({"lease", "deadline", "unknown"})


@dataclasses.dataclass(frozen=True)
class Event:
    """One thing a person should know: its kind, the repo (or idea), why, and where to look."""

    kind: str
    repo: str
    reason: str
    links: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> str:
        """What makes two events the same (the same one is not sent twice within the repeat window)."""
        return f"{self.kind}|{self.repo}|{self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "repo": self.repo, "reason": self.reason, "links": [list(l) for l in self.links]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Event:
        links = tuple((str(a), str(b)) for a, b in (data.get("links") or ()) if a and b)
        return cls(str(data.get("kind", "")), str(data.get("repo", "")), str(data.get("reason", "")), links)


def run_url(base_url: str, dag_id: str, run_id: str) -> str:
    return f"{base_url.rstrip('/')}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


def task_url(base_url: str, dag_id: str, run_id: str, task_id: str, map_index: int | None = None) -> str:
    """The task instance's page in the Airflow UI (its log is the page's default tab)."""
    url = f"{run_url(base_url, dag_id, run_id)}/tasks/{quote(task_id, safe='')}"
    return f"{url}/mapped/{map_index}" if map_index is not None and map_index >= 0 else url


def _failure_reason(entry: Mapping[str, Any]) -> str:
    step = entry.get("failed_step")
    if step:
        return f"{step} failed"
    if entry.get("ci") == "failure":
        return f"CI is red and was not fixed ({entry.get('autofix') or 0} autofix attempt(s))"
    return "the chain failed"


def fleet_events(record: Mapping[str, Any], previous: Mapping[str, Any] | None, *, dag_id: str, run_id: str,
                 base_url: str) -> list[Event]:
    """The events of one ``clone_fleet`` run; ``previous`` is the previous run's record (for repeats)."""
    events: list[Event] = []
    run = ("run", run_url(base_url, dag_id, run_id))
    before = {str(e.get("repo")): e for e in (previous or {}).get("repos") or () if isinstance(e, Mapping)}
    budget_skipped = []
    for entry in record.get("repos") or ():
        if not isinstance(entry, Mapping):
            continue
        repo, index = str(entry.get("repo", "?")), entry.get("map_index")
        links = [run]
        if entry.get("outcome") == "failed":
            step = entry.get("failed_step") or ("autofix" if entry.get("ci") == "failure" else "agent_pass")
            links.append(("log", task_url(base_url, dag_id, run_id, f"repo.{step}", index)))
            if entry.get("ci_url"):
                links.append(("CI", str(entry["ci_url"])))
            events.append(Event("chain failed", repo, _failure_reason(entry), tuple(links)))
        else:
            for incident in entry.get("incidents") or ():
                events.append(Event("incident", repo, str(incident), (run, (
                    "log", task_url(base_url, dag_id, run_id, "repo.agent_pass", index)))))
        kind, reason = entry.get("skip_kind"), entry.get("skip_reason") or ""
        skip_links = (run, ("log", task_url(base_url, dag_id, run_id, "repo.agent_pass", index)))
        if kind == "stall":
            events.append(Event("stalled", repo, str(reason or "stalled"), skip_links))
        elif kind == "budget":
            budget_skipped.append(repo)
        elif kind in REPEAT_SKIPS and (before.get(repo) or {}).get("skip_kind") in REPEAT_SKIPS:
            events.append(Event("skipped repeatedly", repo, f"skipped again ({kind}): {reason}".rstrip(": "),
                                skip_links))
    if budget_skipped:
        budget = record.get("budget_tokens") or 0
        events.append(Event("budget reached", ", ".join(budget_skipped),
                            f"the run's token budget (CLONE_MAX_TOKENS_PER_RUN={budget}) is spent; "
                            f"{len(budget_skipped)} repo(s) skipped", (run,)))
    return events


def idea_events(ideas: Sequence[Mapping[str, Any]], *, dag_id: str, run_id: str, base_url: str) -> list[Event]:
    """One event per BLOCKED idea of a ``clone_ideas`` run."""
    run = ("run", run_url(base_url, dag_id, run_id))
    return [Event("idea blocked", str(idea.get("id", "?")), str(idea.get("last_error") or "BLOCKED"), (run,))
            for idea in ideas if isinstance(idea, Mapping) and idea.get("status") == "BLOCKED"]
