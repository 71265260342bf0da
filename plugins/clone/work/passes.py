"""One agent pass on one repo, with the orchestrator's rules enforced around the agent.

prepare workspace -> stop conditions (run token budget, stall) -> setup and the checks' baseline on
the base commit -> memory docs -> prompt -> agent -> AGENTS.md core policy restored if touched ->
local verification judged against the baseline (one bounded fix chance) -> guards on the diff -> verification history and memory compaction -> one commit.
Failures the orchestrator sees become INCIDENTS.md entries, pushed on their own so the
record survives even when the pass's work does not.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Collection
from pathlib import Path, PurePosixPath
from typing import Any

from clone.memory import backlog
from clone.state import budget
from clone.memory import compaction
from clone.memory import core_policy
from clone.checks import guards
from clone.memory import docs as memory
from clone.memory import prompts
from clone.checks import repo_setup
from clone.state import stall
from clone.checks import verify
from clone.agents import AgentResult, AgentRun, build_agent
from clone.errors import AgentError, CloneError, ConfigError
from clone.fleet.repos_file import RepoEntry
from clone.util.git import Git
from clone.work.push import record_incident
from clone.config.settings import Settings
from clone.work.workspace import Workspace, prepare

log = logging.getLogger(__name__)

#: Files the orchestrator itself writes after the agent ran (staged explicitly, never by ``add -A``).
ORCHESTRATOR_FILES = (memory.AGENTS, memory.MEMORY, memory.INCIDENTS, compaction.ARCHIVE_DIR.rstrip("/"))
#: Directories of caches and build output that a new file under is never committed, whoever wrote it (the
#: checks, or an agent that ran the tests itself), for repos whose .gitignore does not already say so.
GENERATED_DIRS = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis", ".tox",
                            ".nox", ".eggs", "node_modules", ".gradle", ".next", ".parcel-cache", ".turbo"})
#: File suffixes of the same kind (bytecode, coverage data).
GENERATED_SUFFIXES = (".pyc", ".pyo", ".egg-info")
GENERATED_FILES = frozenset({".coverage"})


class PassSkipped(CloneError):
    """The pass did not start (stall, spent run budget); the message says why."""


class PassBlocked(CloneError):
    """The pass ran but its work must not be pushed (red checks, a guard); an incident was recorded."""


@dataclasses.dataclass(frozen=True)
class Protected:
    """What an agent must not change, as it was before the agent ran, and the untracked files already in
    the work tree then (left by earlier checks: not the agent's work, never committed with it)."""

    git_config: bytes
    agents_md: str
    untracked: frozenset[str] = frozenset()


def snapshot_protected(workdir: Path) -> Protected:
    listed = Git(workdir).run("ls-files", "-z", "--others", "--exclude-standard").stdout
    return Protected(git_config=(workdir / ".git" / "config").read_bytes(),
                     agents_md=core_policy.snapshot(workdir),
                     untracked=frozenset(path for path in listed.split("\0") if path))


def is_generated(path: str) -> bool:
    """True for a cache or build-output path (``src/__pycache__/x.pyc``, ``.pytest_cache/v/...``)."""
    parts = PurePosixPath(path).parts
    return (any(part in GENERATED_DIRS or part.endswith(GENERATED_SUFFIXES) for part in parts)
            or parts[-1] in GENERATED_FILES)


def commit_work(git: Git, base: str, tree: str, message: str, *, leftovers: Collection[str] = ()) -> str | None:
    """The one commit rule for agent work, a pass's and an autofix's alike; returns the commit or None.

    The commit holds ``tree`` (the agent's work, taken before the checks ran, so nothing they wrote is in
    it) less every file new since ``base`` that is a cache or build output (:func:`is_generated`) or was
    already lying untracked in the work tree before the agent ran (``leftovers``), plus the orchestrator's
    own files (:data:`ORCHESTRATOR_FILES`) as they are now. The work tree is left alone.
    """
    git.reset_index(tree)
    added = git.run("diff", "--cached", "--name-only", "--no-renames", "-z", "--diff-filter=A", base).stdout
    dropped = [path for path in added.split("\0") if path and (is_generated(path) or path in leftovers)]
    if dropped:
        git.run("update-index", "--force-remove", "-z", "--stdin", stdin="\0".join(dropped) + "\0")
        log.info("commit: left out %d file(s) that are caches, build output or earlier checks' leftovers: %s",
                 len(dropped), ", ".join(dropped[:10]) + (" ..." if len(dropped) > 10 else ""))
    git.stage(*ORCHESTRATOR_FILES)
    return git.commit_index(message)


def restore_protected(workdir: Path, before: Protected, run_id: str) -> list[memory.Incident]:
    """Undo an agent's changes to .git/config (which git would obey: fsmonitor, sshCommand, pushurl...)
    and to AGENTS.md's core policy; one incident for each."""
    incidents = []
    config = workdir / ".git" / "config"
    if not config.exists() or config.read_bytes() != before.git_config:
        config.write_bytes(before.git_config)
        incidents.append(memory.Incident(
            kind="policy violation", title="the agent changed .git/config",
            what_happened="The workspace's .git/config differed after the agent ran; the orchestrator restored it "
                          "before running any git command.",
            root_cause="An agent wrote repository configuration (for example hooks, fsmonitor, push URLs), which "
                       "git would run or obey on the orchestrator's behalf.",
            prevention="Agents never touch .git; Clone restores it after every agent run.",
            context=f"run {run_id}"))
    violation = core_policy.check_and_restore(workdir, before.agents_md)
    if violation:
        incidents.append(core_policy.incident(violation, context=f"run {run_id}"))
    return incidents


def keep_work(git: Git, tree: str, parent: str, label: str) -> str:
    """Keep ``tree`` as a commit under ``refs/clone/<label>/<time>``, reset the work tree to ``parent``,
    and return the ref: work that must not be pushed is never thrown away either."""
    commit = git.out("commit-tree", tree, "-p", parent, "-m", f"clone: {label} (not pushed)")
    ref = f"refs/clone/{label}/{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%SZ}"
    git.run("update-ref", ref, commit)
    git.run("reset", "--quiet", "--hard", parent)
    git.run("clean", "-ffd", "--quiet")
    log.warning("the work was not pushed; it is kept in %s at %s", git.path, ref)
    return ref


def read_docs(workdir: Path) -> dict[str, str]:
    return {doc: memory.read_doc(workdir, doc) for doc in memory.DOCS}


def commit_message(kind: str, repo: str, run_id: str, agent_summary: str, tokens: int | None) -> str:
    """The bot's commit message: a fixed subject, the agent's own summary as the body."""
    subject = {"pass": "maintenance pass", "autofix": "fix CI failure", "bootstrap": "bootstrap project",
               "docs": "add memory docs"}[kind]
    body = "\n".join(line.rstrip() for line in agent_summary.strip().splitlines()[:40])[:3000]
    trailer = f"Clone-Run: {run_id}\nClone-Pass: {kind}"
    if tokens:
        trailer += f"\nClone-Tokens: {tokens}"
    return f"clone: {subject} on {repo}\n\n" + (f"{body}\n\n" if body else "") + trailer + "\n"


def steering_file(entry: RepoEntry, settings: Settings, workdir: Path) -> Path:
    """The repo's own steering prompt (repos.yaml ``steering:``, relative to the repo) or PROMPTS_FILE."""
    if not entry.steering:
        return settings.prompts_file
    path = Path(entry.steering).expanduser()
    if not path.is_absolute():
        path = (workdir / path).resolve()
        if not path.is_relative_to(workdir.resolve()):
            raise ConfigError(f"repos.yaml entry {entry.name}: field 'steering' {entry.steering!r} leaves the repo")
    return path


def checks_for(entry: RepoEntry, workdir: Path) -> list[verify.Check]:
    return verify.checks_from_config(list(entry.verify)) if entry.verify is not None else verify.detect_checks(workdir)


class Pass:
    """State of one pass while it runs (see the module docstring for the order of steps)."""

    def __init__(self, entry: RepoEntry, settings: Settings, run_id: str) -> None:
        self.entry = entry
        self.settings = settings
        self.run_id = run_id
        self.agent = build_agent(settings)
        self.tokens = 0
        self.incidents: list[str] = []
        self.setup: repo_setup.SetupResult | None = None
        self.baseline: list[verify.CheckResult] = []

    # -- helpers -------------------------------------------------------------------------------
    def _run_agent(self, workdir: Path, prompt: str, kind: str) -> AgentResult:
        before = snapshot_protected(workdir)
        try:
            result = self.agent.run(AgentRun(workdir=workdir, prompt=prompt, repo_name=self.entry.name,
                                             pass_kind=kind))
        except AgentError as e:
            failed: AgentResult | None = getattr(e, "result", None)
            self._spend(failed.total_tokens if failed else 0, kind)
            restore_protected(workdir, before, self.run_id)
            raise
        self._spend(result.total_tokens, kind)
        for incident in restore_protected(workdir, before, self.run_id):
            self._incident(incident)
        return result

    def _spend(self, tokens: int, kind: str) -> None:
        self.tokens += tokens
        budget.record(self.settings.workspace, self.run_id, self.entry.name, kind, tokens)

    def _incident(self, incident: memory.Incident, *, commit: bool = False) -> None:
        """Add an INCIDENTS.md entry in the workspace (unless it repeats the latest one)."""
        existing = memory.read_doc(self.workdir, memory.INCIDENTS)
        if f"{incident.kind}: {incident.title}" in _last_incident_heading(existing):
            log.warning("incident (repeat of the latest entry, not written again): %s: %s",
                        incident.kind, incident.title)
            return
        log.warning("incident: %s: %s", incident.kind, incident.title)
        self.incidents.append(f"{incident.kind}: {incident.title}")
        if commit:
            remote = "origin" if self.ws.has_remote and not self.settings.dry_run else None
            record_incident(self.git, self.ws.branch, self.entry.name, incident, self.run_id, remote)
        else:
            memory.append_incident(self.workdir, self.entry.name, incident)

    def _abandon(self, label: str, tree: str) -> str:
        return keep_work(self.git, tree, self.ws.base_sha, label)

    # -- the pass --------------------------------------------------------------------------------
    def stop_reason(self) -> str | None:
        settings = self.settings
        if settings.max_tokens_per_run:
            spent = budget.spent(settings.workspace, self.run_id)
            if spent >= settings.max_tokens_per_run:
                return (f"the run's token budget is spent ({spent} >= CLONE_MAX_TOKENS_PER_RUN="
                        f"{settings.max_tokens_per_run}); no new pass starts in this run")
        return stall.stalled_reason(stall.load(settings.workspace, self.entry.name), self.ws.base_sha,
                                    settings.stall_passes)

    def run(self) -> dict[str, Any]:
        entry, settings = self.entry, self.settings
        self.ws: Workspace = prepare(entry, settings)
        self.workdir = Path(self.ws.workdir)
        self.git: Git = self.ws.git(settings)
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
        texts = prompts.load_texts(settings.core_prompt_file, steering_file(entry, settings, self.workdir))
        prompt = prompts.build_pass_prompt(
            texts, repo_name=entry.name, tasks_per_repo=tasks, docs=read_docs(self.workdir),
            include_agents_md=settings.agent != "codex",
            top_items=[item.text for item in backlog.top_open(before, tasks)],
            guards=prompts.guards_note(settings.protected_paths, settings.guard_policy, [c.command for c in checks]),
        )
        log.info("pass: backlog before: %(open)d open, %(done)d done", before.counts())
        try:
            result = self._run_agent(self.workdir, prompt, "pass")
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
            "push_mode": entry.push_mode or settings.push_mode, "entry": entry.to_dict(), "run_id": self.run_id,
            "setup": self.setup.to_dict() if self.setup else None,
            "baseline": [r.to_dict() for r in self.baseline],
        }
        if not changed:
            log.info("pass: the agent changed nothing in %s", entry.name)
            sha = commit_work(self.git, self.ws.base_sha, docs_tree,
                              commit_message("docs", entry.name, self.run_id, "", None)) if created else None
            return {**outcome, "changed": sha is not None, "head_sha": sha or self.ws.base_sha}

        agent_tree, outcome["checks"], outcome["verification"] = self._verify(checks, agent_tree)
        findings = guards.scan(self.git, self.ws.base_sha, agent_tree, guards.GuardPolicy.from_settings(settings))
        outcome["findings"] = [dataclasses.asdict(f) for f in findings]
        if findings:
            log.warning("guards:\n%s", guards.render(findings))
        if guards.blocking(findings):
            ref = self._abandon("blocked", agent_tree)
            self._incident(guards.incident(guards.blocking(findings), ref), commit=True)
            raise PassBlocked(f"{entry.name}: the push is blocked by the guards:\n{guards.render(findings)}")

        self._record_history(outcome["checks"], "committed" + (
            "" if outcome["verification"] == "passed" else f"; verification {outcome['verification']}"))
        # agent_tree predates the checks: what they left behind (build output, caches) is not committed.
        sha = commit_work(self.git, self.ws.base_sha, agent_tree,
                          commit_message("pass", entry.name, self.run_id, result.last_message, self.tokens or None))
        files = self.git.changed_files(self.ws.base_sha, sha) if sha else []
        log.info("pass: committed %s on %s (%d file(s): %s)", (sha or "nothing")[:12], self.ws.branch,
                 len(files), ", ".join(files[:20]) + (" ..." if len(files) > 20 else ""))
        return {**outcome, "head_sha": sha or self.ws.base_sha, "changed": sha is not None}

    def _setup(self) -> repo_setup.SetupResult:
        """The repo's setup phase (network, cached on its manifests); a failure is the environment's."""
        steps = repo_setup.steps_for(self.entry.setup, self.workdir)
        env = repo_setup.setup_env(passthrough=self.settings.agent_env_passthrough)
        return repo_setup.run_setup(self.workdir, steps, env=env,
                                    timeout_seconds=self.settings.setup_timeout_minutes * 60)

    def _setup_failed(self, result: repo_setup.SetupResult) -> None:
        """One environment incident (repeats are not written again); the pass goes on, judged by the baseline."""
        self._incident(memory.Incident(
            kind="environment", title=f"the repository's setup failed: {result.failed_step}",
            what_happened=f"Setup before the agent failed at `{result.failed_step}`:\n"
                          f"{result.output_tail[-1500:]}",
            root_cause="The repo's environment could not be built (a missing tool, a network or lock problem); "
                       "this is not the agent's doing. Checks that are red because of it are pre-existing.",
            prevention="Set `setup:` in repos.yaml, or install the missing toolchain where the workers run "
                       "(README: toolchains).",
            context=f"run {self.run_id}; base {self.ws.base_sha[:12]}"))

    def _ci_will_judge(self) -> bool:
        workflows = self.workdir / ".github" / "workflows"
        return bool(self.ws.github and self.ws.has_remote and workflows.is_dir()
                    and any(workflows.glob("*.y*ml")))

    def _unverified(self, agent_tree: str, why: str) -> tuple[str, list[dict[str, Any]], str]:
        """No check can judge the agent: go ahead when the repo's CI will, else (block) hold the work."""
        if self.settings.verify_policy != "block" or self._ci_will_judge():
            judge = "the repo's CI judges the push" if self._ci_will_judge() else "CLONE_VERIFY_POLICY=warn"
            log.warning("verification: unverified (%s); %s", why, judge)
            return agent_tree, [], f"unverified ({why}; {judge})"
        ref = self._abandon("unverified", agent_tree)
        message = (f"{self.entry.name}: unverified ({why}) and no CI will judge the push (no GitHub mapping with "
                   "workflows); held under CLONE_VERIFY_POLICY=block. Declare checks with `verify:` in repos.yaml, "
                   f"or `verify: []` to push without checks on purpose. The work is kept at {ref}.")
        self._record_history([], f"held: unverified ({why}), work kept at {ref}")
        self._incident(memory.Incident(
            kind="unverified", title=f"the pass could not be verified: {why}",
            what_happened=message, root_cause="Nothing local or in CI can tell whether the change is sound.",
            prevention="Declare the repo's checks (`verify:` in repos.yaml), or `verify: []` to opt out.",
            context=f"run {self.run_id}; unpushed work at {ref} in the workspace"), commit=True)
        raise PassBlocked(message)

    def _verify(self, checks: list[verify.Check], agent_tree: str) -> tuple[str, list[dict[str, Any]], str]:
        """Run the checks and judge them against the baseline: only checks green on the base commit and red
        now are the agent's; they get one fix chance, then block (or warn)."""
        policy = self.settings.verify_policy
        if policy == "off":
            return agent_tree, [], "off"
        if not checks:
            if self.entry.verify == ():
                return agent_tree, [], "none (verify: [] in repos.yaml)"
            return self._unverified(agent_tree, "no checks found")
        timeout = self.settings.verify_timeout_minutes * 60
        env = verify.default_env(passthrough=self.settings.agent_env_passthrough)
        results = verify.run_checks(self.workdir, checks, timeout_seconds=timeout, env=env,
                                     network=self.entry.checks_network)
        verdict = verify.judge(self.baseline, results)
        for r in verdict.pre_existing:
            log.warning("verification: %s `%s` was already red on the base commit %s (%s): pre-existing, "
                        "not the agent's", r.name, r.command, self.ws.base_sha[:12], r.failure_kind)
        if not verdict.trusted:
            return self._unverified(agent_tree, "every check was red before the agent")
        if not verdict.regressions:
            return agent_tree, [r.to_dict() for r in results], verdict.label
        if policy == "warn":
            log.warning("verification is red; CLONE_VERIFY_POLICY=warn lets the push go ahead")
            return agent_tree, [r.to_dict() for r in results], "failed (warn)"
        log.warning("verification: %d check(s) green before the agent are red now; giving the agent one chance "
                    "to fix them", len(verdict.regressions))
        # Back to exactly the agent's tree: what the checks left behind must not end up in the commit.
        self.git.reset_index(agent_tree)
        self.git.run("checkout-index", "--all", "--force")
        self.git.run("clean", "-ffd", "--quiet")
        fix_prompt = prompts.build_verify_fix_prompt(prompts.load_texts(self.settings.core_prompt_file,
                                                                        self.settings.prompts_file),
                                                     repo_name=self.entry.name,
                                                     evidence=verify.failure_evidence(list(verdict.regressions)))
        try:
            self._run_agent(self.workdir, fix_prompt, "autofix")
        except AgentError:
            log.warning("the fix attempt failed too")
        agent_tree = self.git.snapshot_tree()
        results = verify.run_checks(self.workdir, checks, timeout_seconds=timeout, env=env,
                                     network=self.entry.checks_network)
        verdict = verify.judge(self.baseline, results)
        if not verdict.regressions:
            return agent_tree, [r.to_dict() for r in results], verdict.label.replace("passed", "passed after fix", 1)
        ref = self._abandon("red", agent_tree)
        self._record_history([r.to_dict() for r in results], f"blocked: checks red, work kept at {ref}")
        self._incident(memory.Incident(
            kind="verification-red",
            title="the repository's checks failed after the agent's changes",
            what_happened="Checks green on the base commit failed after the pass and after one fix attempt: "
                          f"{verify.summarize(list(verdict.regressions))}",
            root_cause="The agent's change broke the repository's own checks; see the output tails in the "
                       "task log.",
            prevention="Run the repository's checks before finishing a pass; keep changes small enough to verify.",
            context=f"run {self.run_id}; unpushed work at {ref} in the workspace",
        ), commit=True)
        raise PassBlocked(f"{self.entry.name}: verification is red, push blocked (CLONE_VERIFY_POLICY=block):\n"
                          f"{verify.summarize(results)}")

    def _record_history(self, checks: list[dict[str, Any]], outcome: str) -> None:
        memory.append_verification_history(self.workdir, memory.VerificationEntry(
            when=dt.datetime.now(dt.timezone.utc), run_id=self.run_id, sha=self.ws.base_sha, pass_kind="pass",
            checks=[(c["name"], c["command"], c["exit_code"], c["duration"], c["ok"]) for c in checks],
            outcome=outcome,
        ), repo_name=self.entry.name)
        result = compaction.compact_file(self.workdir, self.settings.project_memory_max_lines,
                                         dt.datetime.now(dt.timezone.utc))
        if result:
            log.info("memory: PROJECT_MEMORY.md compacted from %d to %d lines; archived at %s",
                     result.lines_before, result.lines_after, result.archive)

    def _agent_failed(self, error: AgentError, docs_tree: str) -> None:
        failed: AgentResult | None = getattr(error, "result", None)
        tree = self.git.snapshot_tree()
        ref = self._abandon("agent-failed", tree) if tree != docs_tree else None
        kind = "agent-timeout" if failed and failed.timed_out else (
            "token-budget" if failed and failed.over_budget else "agent-failure")
        self._incident(memory.Incident(
            kind=kind,
            title=f"the {self.agent.name} agent did not finish its pass",
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
