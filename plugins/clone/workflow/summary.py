"""The run summary: one row per repo, from the chain's task states, its last result and why a step was
skipped; and the warnings a run whose repos were all skipped (or skipped again) must not hide."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from clone.work.chain import ChainResult

CHAIN = ("agent_pass", "push", "ci_wait", "autofix", "land")
FAILED_STATES = {"failed", "upstream_failed"}
COLUMNS = ("repo", "pass", "verification", "commits", "CI", "autofix", "tokens", "duration", "CI run", "result")
#: Kinds of skip, told apart by the words of the skip message each task raises (first match wins).
SKIP_KINDS = (
    ("kill switch", "kill switch is on"),
    ("lease", "another pass is working on this repo"),
    ("stall", "stalled:"),
    ("deadline", "MAX_HOURS deadline"),
    ("budget", "token budget is spent"),
    ("no change", "made no change"),
    ("dry run", "dry run"),
    ("no remote", "no remote"),
    ("no GitHub mapping", "no GitHub mapping"),
    ("green", "nothing to fix"),
    ("direct", "the push was the landing"),
)
#: Skips that are a chain's normal end, not worth a word in the row: autofix after a green CI, land in
#: direct mode.
QUIET_SKIPS = frozenset({"green", "direct"})
#: Skips nobody asked for: a run whose repos all skipped for these did nothing, and must say so.
NON_USER_SKIPS = frozenset({"lease", "stall", "deadline", "budget", "unknown"})
REASON_MAX_CHARS = 160


def skip_kind(reason: str | None) -> str:
    """``lease``, ``stall``, ``kill switch``, ... for a skip message; ``unknown`` when none is known."""
    for kind, words in SKIP_KINDS:
        if reason and words in reason:
            return kind
    return "unknown"


def first_skipped(states: Mapping[str, Any], index: int, group: str = "repo") -> str | None:
    """The chain step of repo ``index`` that skipped first (the later ones skipped because it did)."""
    for step in CHAIN:
        if states.get(f"{group}.{step}_{index}") == "skipped":
            return step
    return None


def _short(reason: str, repo: str) -> str:
    reason = " ".join(reason.split())
    if reason.startswith(f"{repo}: "):
        reason = reason[len(repo) + 2:]
    if len(reason) > REASON_MAX_CHARS:
        reason = reason[:REASON_MAX_CHARS - 1] + "…"
    return reason.replace("|", "/")  # a pipe would split the Markdown table's cell


def _pass_state(states: Mapping[str, str], result: ChainResult | None) -> str:
    state = states["agent_pass"]
    if state == "success" and result is not None:
        return "changed" if result.changed else "no change"
    return state


def known_reason(step: str, result: ChainResult | None, *, dry_run: bool, paused: bool) -> str | None:
    """What the summary can tell by itself of why ``step`` skipped (``result`` is the last result the chain
    returned before it). All but the kill switch (``paused``: as it is now) follow from the result."""
    if step == "push" and result and not result.changed:
        return "the pass made no change; nothing to push"
    if step == "push" and dry_run:
        return "dry run; the commit stays in the workspace"
    if step == "push" and result and not result.has_remote:
        return "no remote; the commit stays in the workspace"
    if step == "ci_wait" and result and not result.github:
        return "no GitHub mapping"
    status = result.ci_status if result else None
    if step == "autofix" and status in ("success", "no_ci"):
        return f"CI {status}; nothing to fix"
    if step == "land" and result and result.push_mode == "direct":
        return "direct mode: the push was the landing"
    if step in ("agent_pass", "autofix") and paused:
        return "the kill switch is on (Airflow Variable clone_paused=true)"
    return None


def repo_rows(repos: Sequence[Mapping[str, Any]], states: Mapping[str, Any],
              results: Sequence[ChainResult | None] = (), group: str = "repo",
              skip_reasons: Mapping[int, str] | None = None) -> list[dict[str, Any]]:
    """Rows from ``discover``'s repo list, the run's task states (keys ``<group>.<task>_<map index>``),
    per repo the last result its chain returned (None when none did), and per repo index the message of
    the step that skipped first (see :func:`first_skipped`), where it is known."""
    rows = []
    for index, repo in enumerate(repos):
        chain = {step: states.get(f"{group}.{step}_{index}") or "none" for step in CHAIN}
        result = results[index] if index < len(results) else None
        skipped = first_skipped(states, index, group)
        reason = (skip_reasons or {}).get(index)
        ci = (result.ci if result else None) or {}
        runs = result.ci_runs if result else []
        attempts = result.autofix_attempts if result else None
        pushed = bool(result and result.pushed)
        agent = (result.agent if result else None) or {}
        rows.append({
            "repo": repo.get("name", f"#{index}"),
            "pass": _pass_state(chain, result),
            "verification": result.verification if result else "-",
            "commits": 1 + (attempts or 0) if pushed else ("local" if result and result.changed else 0),
            "CI": ("flaky" if result and result.flaky else ci.get("status", "-")),
            "autofix": attempts if attempts is not None else ("-" if chain["autofix"] != "failed" else "failed"),
            "tokens": result.tokens if result else 0,
            "duration": f"{agent.get('duration', 0):.0f}s" if agent else "-",
            "CI run": runs[-1].get("html_url") if runs else "-",
            # A red CI that nothing fixed (autofix skipped by the kill switch, say) is a failure too.
            "failed": any(state in FAILED_STATES for state in chain.values())
            or (ci.get("status") == "failure" and chain["autofix"] != "success"),
            "skipped_step": skipped,
            "skip_kind": skip_kind(reason) if skipped else None,
            "skip_reason": _short(reason, str(repo.get("name", ""))) if skipped and reason else None,
            **{f"state_{step}": chain[step] for step in CHAIN},
        })
    return rows


def result_cell(row: Mapping[str, Any]) -> str:
    """``FAILED``, ``ok``, or why the chain stopped early: ``skipped: <reason>`` when the pass itself was
    skipped, ``<step> skipped: <reason>`` for a later step."""
    if row["failed"]:
        return "FAILED"
    step = row.get("skipped_step")
    if not step or row.get("skip_kind") in QUIET_SKIPS:
        return "ok"
    reason = row.get("skip_reason") or "reason not known (see the task's log)"
    return f"skipped: {reason}" if step == "agent_pass" else f"{step} skipped: {reason}"


def warnings(rows: Sequence[Mapping[str, Any]],
             previous: Sequence[Mapping[str, Any]] | None = None, previous_run: str | None = None) -> list[str]:
    """What the run must not keep quiet: every repo skipped for reasons nobody chose (lease, stall,
    deadline, budget, unknown), and repos skipped for such a reason again, as in ``previous`` (the rows
    of this DAG's previous run, ``previous_run``)."""
    found = []
    non_user = [r for r in rows if r.get("skipped_step") == "agent_pass" and r.get("skip_kind") in NON_USER_SKIPS]
    if rows and len(non_user) == len(rows):
        kinds = sorted({str(r["skip_kind"]) for r in non_user})
        found.append(f"WARNING: every repo was skipped ({', '.join(kinds)}); this run did no work")
    before = {str(r.get("repo")): r for r in previous or ()
              if r.get("skipped_step") == "agent_pass" and r.get("skip_kind") in NON_USER_SKIPS}
    for row in non_user:
        earlier = before.get(str(row["repo"]))
        if earlier:
            found.append(f"WARNING: {row['repo']} skipped again ({row['skip_kind']}; also in run "
                         f"{previous_run or 'the previous run'}: {earlier.get('skip_kind')})")
    return found


def render_table(rows: Sequence[Mapping[str, Any]], notes: Sequence[str] = ()) -> str:
    """A Markdown table, readable in the task log and as a DAG run note; ``notes`` (warnings) first."""
    lines = [*notes, *([""] if notes else []), "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        values = [str(row[c]) for c in COLUMNS[:-1]] + [result_cell(row)]
        lines.append("| " + " | ".join(values) + " |")
    failed = [str(row["repo"]) for row in rows if row["failed"]]
    skipped = [row for row in rows if not row["failed"] and row.get("skipped_step") == "agent_pass"]
    lines.append("")
    lines.append(f"{len(rows)} repo(s), {len(failed)} failed" + (f": {', '.join(failed)}" if failed else "")
                 + (f", {len(skipped)} skipped" if skipped else ""))
    return "\n".join(lines)
