"""One agent pass on one repo, with the orchestrator's rules enforced around the agent.

prepare workspace -> stop conditions (run token budget, stall) -> setup and the checks' baseline on
the base commit -> memory docs -> prompt -> the agent session (snapshot, agent, restore, ledger) ->
local verification judged against the baseline (one bounded fix chance, through the same session;
:mod:`clone.work.verification`) -> guards on the diff -> verification history and memory compaction ->
one commit. Failures the orchestrator sees become INCIDENTS.md entries, recorded where the push mode
allows (:func:`clone.work.push.record_incident`) so the record survives even when the work does not.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from clone.checks import guards, repo_setup, verify
from clone.config.settings import Settings
from clone.errors import AgentError, CloneError
from clone.fleet.repos_file import RepoEntry
from clone.memory import backlog
from clone.memory import docs as memory
from clone.memory import prompts
from clone.state import stall
from clone.util.git import Git
from clone.work import verification
from clone.work.push import record_incident
from clone.work.session import AgentSession, GuardsBlocked, checks_for, commit_message, read_docs, steering_file
from clone.work.workspace import Workspace, prepare

log = logging.getLogger(__name__)


class PassSkipped(CloneError):
    """The pass did not start (stall, spent run budget); the message says why."""


class PassBlocked(CloneError):
    """The pass ran but its work must not be pushed (red checks, a guard); an incident was recorded."""


class Pass:
    """State of one pass while it runs (see the module docstring for the order of steps)."""

    def __init__(self, entry: RepoEntry, settings: Settings, run_id: str) -> None:
        self.entry = entry
        self.settings = settings
        self.run_id = run_id
        self.push_mode = entry.push_mode or settings.push_mode
        self.incidents: list[str] = []
        self.setup: repo_setup.SetupResult | None = None
        self.baseline: list[verify.CheckResult] = []

    @property
    def tokens(self) -> int:
        return self.session.tokens

    def incident(self, incident: memory.Incident, *, commit: bool = False) -> None:
        """Add an INCIDENTS.md entry in the workspace (unless it repeats the latest one); ``commit``:
        record it for the repo as the push mode allows (the work itself is kept under a ref first)."""
        existing = memory.read_doc(self.workdir, memory.INCIDENTS)
        if f"{incident.kind}: {incident.title}" in _last_incident_heading(existing):
            log.warning("incident (repeat of the latest entry, not written again): %s: %s",
                        incident.kind, incident.title)
            return
        log.warning("incident: %s: %s", incident.kind, incident.title)
        self.incidents.append(f"{incident.kind}: {incident.title}")
        if commit:
            remote = "origin" if self.ws.has_remote and not self.settings.dry_run else None
            record_incident(self.git, self.ws.branch, self.entry.name, incident, self.run_id, remote,
                            mode=self.push_mode, workspace=self.settings.workspace)
        else:
            memory.append_incident(self.workdir, self.entry.name, incident)

    def abandon(self, label: str, tree: str) -> str:
        return self.session.keep(tree, self.ws.base_sha, label)

    def stop_reason(self) -> str | None:
        return self.session.run_budget_spent() or stall.stalled_reason(
            stall.load(self.settings.workspace, self.entry.name), self.ws.base_sha, self.settings.stall_passes)

    def run(self) -> dict[str, Any]:
        entry, settings = self.entry, self.settings
        self.ws: Workspace = prepare(entry, settings)
        self.workdir = Path(self.ws.workdir)
        self.git: Git = self.ws.git(settings, entry)
        self.session = AgentSession(settings, repo=entry.name, run_id=self.run_id, git=self.git,
                                    steering=steering_file(entry, settings, self.workdir),
                                    on_incident=self.incident)
        reason = self.stop_reason()
        if reason:
            raise PassSkipped(f"{entry.name}: {reason}")

        checks: list[verify.Check] = []
        if settings.verify_policy != "off":
            self.setup = self._setup()
            checks = checks_for(entry, self.workdir)
            self.baseline = verify.baseline(self.workdir, checks, self.ws.base_sha,
                                            timeout_seconds=settings.verify_timeout_minutes * 60,
                                            env=verify.default_env(passthrough=settings.agent_env_passthrough),
                                            network=entry.checks_network)
            # The agent starts from the base commit, not from what setup or the baseline left behind.
            self.git.run("reset", "--quiet", "--hard", self.ws.base_sha)
            self.git.run("clean", "-ffd", "--quiet")
            if not self.setup.ok:
                self._setup_failed(self.setup)
        created = memory.ensure_docs(self.workdir, entry.name)
        if created:
            log.info("pass: created missing memory docs: %s", ", ".join(created))
        docs_tree = self.git.snapshot_tree()
        tasks = entry.tasks_per_repo or settings.tasks_per_repo
        before = backlog.parse(memory.read_doc(self.workdir, memory.BACKLOG))
        prompt = prompts.build_pass_prompt(
            self.session.texts(), repo_name=entry.name, tasks_per_repo=tasks, docs=read_docs(self.workdir),
            include_agents_md=settings.agent != "codex",
            top_items=[item.text for item in backlog.top_open(before, tasks)],
            guards=prompts.guards_note(settings.protected_paths, settings.guard_policy, [c.command for c in checks]),
        )
        log.info("pass: backlog before: %(open)d open, %(done)d done", before.counts())
        try:
            result = self.session.run_agent(prompt, "pass")
        except AgentError as e:
            self._agent_failed(e, docs_tree)
            raise

        agent_tree = self.git.snapshot_tree()
        changed = agent_tree != docs_tree
        stall.record_pass(settings.workspace, entry.name, self.ws.base_sha, changed)
        after = backlog.parse(memory.read_doc(self.workdir, memory.BACKLOG))
        log.info("pass: backlog after: %(open)d open, %(done)d done", after.counts())
        outcome: dict[str, Any] = {
            **self.ws.to_dict(), "changed": changed, "agent": result.to_dict(), "tokens": self.tokens,
            "backlog_before": before.counts(), "backlog_after": after.counts(), "created_docs": created,
            "checks": [], "verification": "skipped", "findings": [], "incidents": self.incidents,
            "push_mode": self.push_mode, "entry": entry.to_dict(), "run_id": self.run_id,
            "setup": self.setup.to_dict() if self.setup else None,
            "baseline": [r.to_dict() for r in self.baseline],
        }
        if not changed:
            log.info("pass: the agent changed nothing in %s", entry.name)
            sha = self.session.commit(self.ws.base_sha, docs_tree,
                                      commit_message("docs", entry.name, self.run_id, "", None)) if created else None
            return {**outcome, "changed": sha is not None, "head_sha": sha or self.ws.base_sha}

        agent_tree, outcome["checks"], outcome["verification"] = verification.verify_pass(self, checks, agent_tree)
        try:
            findings = self.session.guard(self.ws.base_sha, agent_tree, label="blocked")
        except GuardsBlocked as e:
            self.incident(guards.incident(e.findings, e.ref), commit=True)
            raise PassBlocked(f"{entry.name}: the push is blocked by the guards:\n{guards.render(e.findings)}") from e
        outcome["findings"] = [dataclasses.asdict(f) for f in findings]
        verification.record_history(self, outcome["checks"], "committed" + (
            "" if outcome["verification"] == "passed" else f"; verification {outcome['verification']}"))
        # agent_tree predates the checks: what they left behind (build output, caches) is not committed.
        sha = self.session.commit(self.ws.base_sha, agent_tree, commit_message(
            "pass", entry.name, self.run_id, result.last_message, self.tokens or None))
        files = self.git.changed_files(self.ws.base_sha, sha) if sha else []
        log.info("pass: committed %s on %s (%d file(s): %s)", (sha or "nothing")[:12], self.ws.branch,
                 len(files), ", ".join(files[:20]) + (" ..." if len(files) > 20 else ""))
        return {**outcome, "tokens": self.tokens, "head_sha": sha or self.ws.base_sha, "changed": sha is not None}

    def _setup(self) -> repo_setup.SetupResult:
        """The repo's setup phase (network, cached on its manifests); a failure is the environment's."""
        steps = repo_setup.steps_for(self.entry.setup, self.workdir)
        env = repo_setup.setup_env(passthrough=self.settings.agent_env_passthrough)
        return repo_setup.run_setup(self.workdir, steps, env=env,
                                    timeout_seconds=self.settings.setup_timeout_minutes * 60)

    def _setup_failed(self, result: repo_setup.SetupResult) -> None:
        """One environment incident (repeats are not written again); the pass goes on, judged by the baseline."""
        self.incident(memory.Incident(
            kind="environment", title=f"the repository's setup failed: {result.failed_step}",
            what_happened=f"Setup before the agent failed at `{result.failed_step}`:\n"
                          f"{result.output_tail[-1500:]}",
            root_cause="The repo's environment could not be built (a missing tool, a network or lock problem); "
                       "this is not the agent's doing. Checks that are red because of it are pre-existing.",
            prevention="Set `setup:` in repos.yaml, or install the missing toolchain where the workers run "
                       "(README: toolchains).",
            context=f"run {self.run_id}; base {self.ws.base_sha[:12]}"))

    def _agent_failed(self, error: AgentError, docs_tree: str) -> None:
        failed = getattr(error, "result", None)
        tree = self.git.snapshot_tree()
        ref = self.abandon("agent-failed", tree) if tree != docs_tree else None
        kind = "agent-timeout" if failed and failed.timed_out else (
            "token-budget" if failed and failed.over_budget else "agent-failure")
        self.incident(memory.Incident(
            kind=kind,
            title=f"the {self.session.agent.name} agent did not finish its pass",
            what_happened=str(error),
            root_cause="The agent process failed, timed out or was stopped by the token budget; its output "
                       "tail is in the task log.",
            prevention="Check the agent's configuration (model, API key, CLONE_AGENT_TIMEOUT_MINUTES, "
                       "CLONE_MAX_TOKENS_PER_PASS) and keep backlog items small.",
            context=f"run {self.run_id}" + (f"; partial work kept at {ref}" if ref else ""),
        ), commit=True)


def _last_incident_heading(text: str) -> str:
    headings = [line for line in text.splitlines() if line.startswith("## ") and "UTC —" in line]
    return headings[-1] if headings else ""


def run_pass(entry: RepoEntry, settings: Settings, run_id: str) -> dict[str, Any]:
    """Run one pass; returns the pass result (see :class:`Pass`)."""
    return Pass(entry, settings, run_id).run()
