"""The fleet record (what the page reads) and the run note's headline, from summary rows."""

from __future__ import annotations

from clone.work.chain import ChainResult
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


def chain_result(repo: str, **fields) -> ChainResult:
    return ChainResult(repo=repo, workdir=f"/ws/{repo}", branch="main", base_sha="0" * 40, head_sha="1" * 40,
                       has_remote=True, github=f"acme/{repo}", push_mode="direct", run_id="r1", changed=True,
                       entry={"name": repo}, **fields)


RESULTS = [  # the chain's last results, typed as the summary reads them from XCom
    chain_result("alpha", pushed=True, pushed_sha="a" * 40, tokens=20_000, ci={"status": "success", "runs": [RUN]}),
    chain_result("beta", pushed=True, pushed_sha="b" * 40, tokens=21_000, autofix_attempts=1,
                 incidents=["guard: a protected file was restored"], ci={"status": "success", "runs": [RUN]}),
    None, None,
]
#: What fleet_summary hands the record: each result as its XCom JSON.
RESULTS_JSON = [r.to_json() if r else None for r in RESULTS]
REPOS = [{"name": n} for n in ("alpha", "beta", "delta", "eps")]


def rows():
    return repo_rows(REPOS, STATES, RESULTS, skip_reasons={3: "eps: stalled: the last 3 passes changed nothing"})


def test_headline_counts_each_outcome_once_and_the_tokens():
    assert headline(rows()) == "4 repos: 1 pushed, 1 autofixed, 1 failed, 1 skipped; 41k tokens"
    assert headline(rows()[:1]) == "1 repo: 1 pushed, 0 autofixed, 0 failed; 20k tokens"
    assert headline([]) == "0 repos: 0 pushed, 0 autofixed, 0 failed; 0 tokens"


def test_record_entries_carry_what_the_page_shows():
    record = fleet_record(rows(), RESULTS_JSON, disabled=[{"repo": "gamma", "reason": "enabled: false"}], budget_tokens=9)
    alpha, beta, delta, eps = record["repos"]
    assert [e["outcome"] for e in record["repos"]] == ["pushed", "autofixed", "failed", "skipped"]
    assert alpha["sha"] == "a" * 40 and alpha["ci"] == "success" and alpha["ci_url"] == RUN["html_url"]
    assert beta["autofix"] == 1 and beta["commits"] == 2 and beta["incidents"] == ["guard: a protected file was restored"]
    assert delta["failed_step"] == "agent_pass" and delta["incidents"][0].startswith("agent-failure")
    assert eps["skip_kind"] == "stall" and eps["skip_reason"].startswith("stalled:") and eps["map_index"] == 3
    assert record["disabled"] == [{"repo": "gamma", "reason": "enabled: false"}] and record["budget_tokens"] == 9
    assert alpha["github"] == "acme/alpha" and alpha["branch"] == "main"
    # The typed result itself reads the same as its JSON.
    assert fleet_record(rows(), RESULTS)["repos"] == record["repos"]


def test_a_failed_land_is_the_failed_step():
    states = {**{f"repo.{s}_0": "success" for s in ("agent_pass", "push", "ci_wait")},
              "repo.autofix_0": "skipped", "repo.land_0": "failed"}
    gated = RESULTS[0].but(push_mode="gated", push_branch="clone/r1")
    entry = fleet_record(repo_rows(REPOS[:1], states, [gated]), [gated.to_json()])["repos"][0]
    assert entry["outcome"] == "failed" and entry["failed_step"] == "land" and entry["branch"] == "clone/r1"


def test_results_of_another_shape_cost_a_dash_not_the_record():
    class Typed:  # a typed result (the chain's results may become frozen dataclasses)
        pushed_sha = "c" * 40
        ci = None

    record = fleet_record(rows()[:1], [Typed()])
    assert record["repos"][0]["sha"] == "c" * 40 and record["repos"][0]["ci"] == "-"
    assert outcome({"failed": False, "pass": "no change", "commits": 0}) == "no change"
