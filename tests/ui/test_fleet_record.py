"""The fleet record (what the page reads) and the run note's headline, from summary rows."""

from __future__ import annotations

from clone.workflow.fleet_record import fleet_record, headline, outcome
from clone.workflow.summary import repo_rows

STATES = {  # alpha pushed green, beta red then autofixed, delta's pass failed, eps skipped by a stall
    **{f"repo.{s}_0": st for s, st in (("agent_pass", "success"), ("push", "success"), ("ci_wait", "success"),
                                        ("autofix", "skipped"))},
    **{f"repo.{s}_1": "success" for s in ("agent_pass", "push", "ci_wait", "autofix")},
    "repo.agent_pass_2": "failed", "repo.push_2": "upstream_failed", "repo.ci_wait_2": "upstream_failed",
    "repo.autofix_2": "upstream_failed",
    **{f"repo.{s}_3": "skipped" for s in ("agent_pass", "push", "ci_wait", "autofix")},
}
RUN = {"html_url": "https://github.com/acme/beta/actions/runs/7"}
RESULTS = [
    {"changed": True, "pushed": True, "pushed_sha": "a" * 40, "tokens": 20_000, "ci": {"status": "success", "runs": [RUN]}},
    {"changed": True, "pushed": True, "pushed_sha": "b" * 40, "tokens": 21_000, "autofix_attempts": 1,
     "incidents": ["guard: a protected file was restored"], "ci": {"status": "success", "runs": [RUN]}},
    None, None,
]
REPOS = [{"name": n} for n in ("alpha", "beta", "delta", "eps")]


def rows():
    return repo_rows(REPOS, STATES, RESULTS, skip_reasons={3: "eps: stalled: the last 3 passes changed nothing"})


def test_headline_counts_each_outcome_once_and_the_tokens():
    assert headline(rows()) == "4 repos: 1 pushed, 1 autofixed, 1 failed, 1 skipped; 41k tokens"
    assert headline(rows()[:1]) == "1 repo: 1 pushed, 0 autofixed, 0 failed; 20k tokens"
    assert headline([]) == "0 repos: 0 pushed, 0 autofixed, 0 failed; 0 tokens"


def test_record_entries_carry_what_the_page_shows():
    record = fleet_record(rows(), RESULTS, disabled=[{"repo": "gamma", "reason": "enabled: false"}], budget_tokens=9)
    alpha, beta, delta, eps = record["repos"]
    assert [e["outcome"] for e in record["repos"]] == ["pushed", "autofixed", "failed", "skipped"]
    assert alpha["sha"] == "a" * 40 and alpha["ci"] == "success" and alpha["ci_url"] == RUN["html_url"]
    assert beta["autofix"] == 1 and beta["commits"] == 2 and beta["incidents"] == ["guard: a protected file was restored"]
    assert delta["failed_step"] == "agent_pass" and delta["incidents"][0].startswith("agent-failure")
    assert eps["skip_kind"] == "stall" and eps["skip_reason"].startswith("stalled:") and eps["map_index"] == 3
    assert record["disabled"] == [{"repo": "gamma", "reason": "enabled: false"}] and record["budget_tokens"] == 9


def test_results_of_another_shape_cost_a_dash_not_the_record():
    class Typed:  # a typed result (the chain's results may become frozen dataclasses)
        pushed_sha = "c" * 40
        ci = None

    record = fleet_record(rows()[:1], [Typed()])
    assert record["repos"][0]["sha"] == "c" * 40 and record["repos"][0]["ci"] == "-"
    assert outcome({"failed": False, "pass": "no change", "commits": 0}) == "no change"
