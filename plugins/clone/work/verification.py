"""A pass's local verification: the checks after the agent, judged against the baseline, with one bounded
fix attempt through the pass's own agent session (so the fix obeys every rule the pass does, and its
prompt carries the same core directive and steering). Also the verification history in PROJECT_MEMORY.md.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

from clone.checks import verify
from clone.errors import AgentError
from clone.memory import compaction
from clone.memory import docs as memory
from clone.memory import prompts

if TYPE_CHECKING:
    from clone.work.passes import Pass

log = logging.getLogger(__name__)

Verdict = tuple[str, list[dict[str, Any]], str]  # (the tree to commit, the checks' results, the label)


def ci_will_judge(p: Pass) -> bool:
    workflows = p.workdir / ".github" / "workflows"
    return bool(p.ws.github and p.ws.has_remote and workflows.is_dir() and any(workflows.glob("*.y*ml")))


def unverified(p: Pass, agent_tree: str, why: str) -> Verdict:
    """No check can judge the agent: go ahead when the repo's CI will, else (block) hold the work."""
    from clone.work.passes import PassBlocked

    if p.settings.verify_policy != "block" or ci_will_judge(p):
        judge = "the repo's CI judges the push" if ci_will_judge(p) else "CLONE_VERIFY_POLICY=warn"
        log.warning("verification: unverified (%s); %s", why, judge)
        return agent_tree, [], f"unverified ({why}; {judge})"
    ref = p.abandon("unverified", agent_tree)
    message = (f"{p.entry.name}: unverified ({why}) and no CI will judge the push (no GitHub mapping with "
               "workflows); held under CLONE_VERIFY_POLICY=block. Declare checks with `verify:` in repos.yaml, "
               f"or `verify: []` to push without checks on purpose. The work is kept at {ref}.")
    record_history(p, [], f"held: unverified ({why}), work kept at {ref}")
    p.incident(memory.Incident(
        kind="unverified", title=f"the pass could not be verified: {why}",
        what_happened=message, root_cause="Nothing local or in CI can tell whether the change is sound.",
        prevention="Declare the repo's checks (`verify:` in repos.yaml), or `verify: []` to opt out.",
        context=f"run {p.run_id}; unpushed work at {ref} in the workspace"), commit=True)
    raise PassBlocked(message)


def verify_pass(p: Pass, checks: list[verify.Check], agent_tree: str) -> Verdict:
    """Run the checks and judge them against the baseline: only checks green on the base commit and red
    now are the agent's; they get one fix chance, then block (or warn)."""
    from clone.work.passes import PassBlocked

    policy = p.settings.verify_policy
    if policy == "off":
        return agent_tree, [], "off"
    if not checks:
        if p.entry.verify == ():
            return agent_tree, [], "none (verify: [] in repos.yaml)"
        return unverified(p, agent_tree, "no checks found")
    timeout = p.settings.verify_timeout_minutes * 60
    env = verify.default_env(passthrough=p.settings.agent_env_passthrough)
    results = verify.run_checks(p.workdir, checks, timeout_seconds=timeout, env=env,
                                 network=p.entry.checks_network)
    verdict = verify.judge(p.baseline, results)
    for r in verdict.pre_existing:
        log.warning("verification: %s `%s` was already red on the base commit %s (%s): pre-existing, "
                    "not the agent's", r.name, r.command, p.ws.base_sha[:12], r.failure_kind)
    if not verdict.trusted:
        return unverified(p, agent_tree, "every check was red before the agent")
    if not verdict.regressions:
        return agent_tree, [r.to_dict() for r in results], verdict.label
    if policy == "warn":
        log.warning("verification is red; CLONE_VERIFY_POLICY=warn lets the push go ahead")
        return agent_tree, [r.to_dict() for r in results], "failed (warn)"
    log.warning("verification: %d check(s) green before the agent are red now; giving the agent one chance "
                "to fix them", len(verdict.regressions))
    # Back to exactly the agent's tree: what the checks left behind must not end up in the commit.
    p.git.reset_index(agent_tree)
    p.git.run("checkout-index", "--all", "--force")
    p.git.run("clean", "-ffd", "--quiet")
    fix_prompt = prompts.build_verify_fix_prompt(p.session.texts(), repo_name=p.entry.name,
                                                 evidence=verify.failure_evidence(list(verdict.regressions)))
    try:
        p.session.run_agent(fix_prompt, "autofix")
    except AgentError:
        log.warning("the fix attempt failed too")
    agent_tree = p.git.snapshot_tree()
    results = verify.run_checks(p.workdir, checks, timeout_seconds=timeout, env=env,
                                 network=p.entry.checks_network)
    verdict = verify.judge(p.baseline, results)
    if not verdict.regressions:
        return agent_tree, [r.to_dict() for r in results], verdict.label.replace("passed", "passed after fix", 1)
    ref = p.abandon("red", agent_tree)
    record_history(p, [r.to_dict() for r in results], f"blocked: checks red, work kept at {ref}")
    p.incident(memory.Incident(
        kind="verification-red",
        title="the repository's checks failed after the agent's changes",
        what_happened="Checks green on the base commit failed after the pass and after one fix attempt: "
                      f"{verify.summarize(list(verdict.regressions))}",
        root_cause="The agent's change broke the repository's own checks; see the output tails in the "
                   "task log.",
        prevention="Run the repository's checks before finishing a pass; keep changes small enough to verify.",
        context=f"run {p.run_id}; unpushed work at {ref} in the workspace",
    ), commit=True)
    raise PassBlocked(f"{p.entry.name}: verification is red, push blocked (CLONE_VERIFY_POLICY=block):\n"
                      f"{verify.summarize(results)}")


def record_history(p: Pass, checks: list[dict[str, Any]], outcome: str) -> None:
    """The pass's verification-history entry in PROJECT_MEMORY.md, then memory compaction if due."""
    memory.append_verification_history(p.workdir, memory.VerificationEntry(
        when=dt.datetime.now(dt.timezone.utc), run_id=p.run_id, sha=p.ws.base_sha, pass_kind="pass",
        checks=[(c["name"], c["command"], c["exit_code"], c["duration"], c["ok"]) for c in checks],
        outcome=outcome,
    ), repo_name=p.entry.name)
    result = compaction.compact_file(p.workdir, p.settings.project_memory_max_lines,
                                     dt.datetime.now(dt.timezone.utc))
    if result:
        log.info("memory: PROJECT_MEMORY.md compacted from %d to %d lines; archived at %s",
                 result.lines_before, result.lines_after, result.archive)
