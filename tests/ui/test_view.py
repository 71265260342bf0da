"""Folding run records into the page's rows, charts and ideas (pure; the browser test drives the real page)."""

from __future__ import annotations

import datetime as dt

from clone.ui.charts import fleet_charts
from clone.ui.data import RunRecord
from clone.ui.page import fleet_page, repo_page
from clone.ui.view import daily_series, fleet_rows, ideas, repo_history

NOW = dt.datetime(2026, 12, 3, 12, tzinfo=dt.timezone.utc)


def run(days_ago: float, repos: list[dict], **extra) -> RunRecord:
    return RunRecord("clone_fleet", f"r{days_ago}", NOW - dt.timedelta(days=days_ago), "success",
                     {"repos": repos, **extra})


RECORDS = [
    run(20, [{"repo": "a", "outcome": "failed", "failed_step": "push", "tokens": 1000, "incidents": ["push: x"]}]),
    run(3, [{"repo": "a", "outcome": "pushed", "commits": 1, "ci": "success", "tokens": 500, "map_index": 0},
            {"repo": "b", "outcome": "failed", "failed_step": "agent_pass", "tokens": 7, "map_index": 1,
             "incidents": ["agent-failure: crash"]}], budget_tokens=2000),
    run(0.1, [{"repo": "a", "outcome": "autofixed", "commits": 2, "ci": "success", "autofix": 1, "tokens": 300,
               "map_index": 0, "ci_url": "https://ci/1"},
              {"repo": "c", "outcome": "skipped", "skip_kind": "stall", "skip_reason": "stalled: 3", "map_index": 2}],
        disabled=[{"repo": "d", "reason": "enabled: false"}], budget_tokens=1000),
    RunRecord("clone_fleet", "odd", NOW, "success", {"repos": [None, 3, {"no": "repo"}]}),  # tolerated
]


def test_rows_state_links_tokens_and_incidents():
    rows = {r["repo"]: r for r in fleet_rows(RECORDS, NOW, paused=False, base="", cost_per_mtok=2.0)}
    assert {k: r["state"] for k, r in rows.items()} == {"a": "active", "b": "failing", "c": "stalled", "d": "disabled"}
    a = rows["a"]
    assert (a["outcome"], a["commits"], a["autofix"], a["ci_url"]) == ("autofixed", 2, 1, "https://ci/1")
    assert (a["tokens_7d"], a["tokens_30d"], a["incidents"]) == (800, 1800, [])  # the clean pass cleared the old one
    assert a["cost_30d"] == round(1800 * 2 / 1e6, 2)
    assert a["links"] == {"run": "/dags/clone_fleet/runs/r0.1", "log": "/dags/clone_fleet/runs/r0.1/tasks/repo.agent_pass/mapped/0"}
    assert rows["b"]["incidents"] == ["agent-failure: crash"] and rows["b"]["reason"] == "agent_pass failed"
    assert rows["c"]["reason"] == "stalled: 3" and rows["d"]["reason"] == "enabled: false"
    paused = {r["repo"]: r["state"] for r in fleet_rows(RECORDS, NOW, paused=True, base="")}
    assert paused["a"] == "paused" and paused["c"] == "stalled"


def test_series_and_charts_hold_the_recorded_figures():
    series = daily_series(RECORDS, NOW, 7)
    assert len(series) == 7 and series[-1]["day"] == "2026-12-03"
    today, three = series[-1], series[-4]
    assert today["passes"]["autofixed"] == 1 and today["passes"]["skipped"] == 1 and today["commits"] == 2
    assert three["passes"] == {"pushed": 1, "autofixed": 0, "failed": 1, "skipped": 0, "no change": 0, "local": 0}
    assert (three["tokens"], three["budget"], three["ci_green"]) == (507, 2000, 1)
    svg = fleet_charts(series)
    assert '<rect' in svg and 'data-day="2026-12-03" data-series="autofixed" data-value="1"' in svg
    assert 'data-series="budget" data-values="0,0,0,2000,0,0,1000"' in svg


def test_history_ideas_and_pages_escape_what_they_show():
    history = repo_history(RECORDS, "a", "http://x")
    assert [h["outcome"] for h in history] == ["autofixed", "pushed", "failed"]
    idea_runs = [RunRecord("clone_ideas", "i1", NOW, "failed", [{"id": "n", "status": "BLOCKED", "last_error": "e"}]),
                 RunRecord("clone_ideas", "i2", NOW, "success", [{"id": "n", "status": "ACTIVE", "repo_name": "n-cli"}])]
    assert [(i["id"], i["status"], i["repo_name"]) for i in ideas(idea_runs)] == [("n", "ACTIVE", "n-cli")]
    rows = fleet_rows([run(0, [{"repo": "<b>x</b>", "outcome": "skipped", "skip_kind": "lease",
                                "skip_reason": "<script>alert(1)</script>"}])], NOW, paused=False, base="")
    html = fleet_page({"repos": rows, "series": daily_series([], NOW, 7), "ideas": [], "runs": 1, "days": 7}, "/clone")
    assert "<script>alert" not in html and "&lt;script&gt;" in html and "&lt;b&gt;x&lt;/b&gt;" in html
    assert "1 run in the last 7 days;" in html
    two = fleet_page({"repos": rows, "series": daily_series([], NOW, 1), "ideas": [], "runs": 2, "days": 1}, "/clone")
    assert "2 runs in the last 1 day;" in two
    assert "<script>" not in repo_page("<script>", [], "/clone")
