"""One agent session: the only way a step runs the agent and turns what it left into a commit.

Every step that hands a work tree to the agent (a pass, its verification fix, a CI autofix, an idea's
bootstrap) goes through :class:`AgentSession`, so each rule holds in each of them by construction:

snapshot (``.git/config``, ``.git/info/``, ``AGENTS.md``'s core policy, the untracked leftovers) ->
the agent (its process groups recorded in the repo's lease) -> restore what it must not change (one
incident each) -> the run's token ledger -> (the step's own judgement, e.g. local verification) ->
guards on the diff -> one commit by the commit rule, or the work kept under ``refs/clone/<label>/<time>``.
Every prompt is built from :meth:`AgentSession.texts`: the core directive and the step's steering.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

from clone.agents import AgentResult, AgentRun, build_agent
from clone.checks import guards, verify
from clone.config.settings import Settings
from clone.errors import AgentError, CloneError, ConfigError
from clone.fleet.repos_file import RepoEntry
from clone.memory import core_policy
from clone.memory import docs as memory
from clone.memory import prompts
from clone.state import budget, lease
from clone.util import runner
from clone.util.git import Git
from clone.work.commits import commit_work, keep_work

log = logging.getLogger(__name__)

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"  # git's id of the empty tree


class GuardsBlocked(CloneError):
    """The guards blocked the work; it is kept at ``ref`` (``findings`` are the blocking ones)."""

    def __init__(self, message: str, *, ref: str, findings: list[guards.Finding]) -> None:
        super().__init__(message)
        self.ref = ref
        self.findings = findings


@dataclasses.dataclass(frozen=True)
class Protected:
    """What an agent must not change, as it was before the agent ran, and the untracked files already in
    the work tree then (left by earlier checks: not the agent's work, never committed with it)."""

    git_config: bytes
    agents_md: str
    git_info: tuple[tuple[str, bytes], ...] = ()
    untracked: frozenset[str] = frozenset()


def _git_info(workdir: Path) -> tuple[tuple[str, bytes], ...]:
    info = workdir / ".git" / "info"
    if not info.is_dir():
        return ()
    return tuple(sorted((str(p.relative_to(info)), p.read_bytes()) for p in info.rglob("*") if p.is_file()))


def snapshot_protected(workdir: Path) -> Protected:
    listed = Git(workdir).run("ls-files", "-z", "--others", "--exclude-standard").stdout
    config = workdir / ".git" / "config"
    return Protected(git_config=config.read_bytes() if config.exists() else b"",
                     agents_md=core_policy.snapshot(workdir), git_info=_git_info(workdir),
                     untracked=frozenset(path for path in listed.split("\0") if path))


def _restore_git_info(workdir: Path, before: Protected) -> bool:
    """Put ``.git/info/`` back as it was (exclude, attributes, sparse-checkout...); True if it differed."""
    if _git_info(workdir) == before.git_info:
        return False
    info = workdir / ".git" / "info"
    wanted = dict(before.git_info)
    for path in [p for p in info.rglob("*") if p.is_file() or p.is_symlink()] if info.is_dir() else []:
        if str(path.relative_to(info)) not in wanted:
            path.unlink()
    for name, data in wanted.items():
        target = info / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink() or (target.exists() and not target.is_file()):
            target.unlink()
        target.write_bytes(data)
    return True


def _git_incident(what: str, run_id: str) -> memory.Incident:
    return memory.Incident(
        kind="policy violation", title=f"the agent changed {what}",
        what_happened=f"The workspace's {what} differed after the agent ran; the orchestrator restored it "
                      "before running any git command.",
        root_cause="An agent wrote repository configuration (for example hooks, fsmonitor, push URLs, "
                   "excludes), which git would run or obey on the orchestrator's behalf.",
        prevention="Agents never touch .git; Clone restores it after every agent run.",
        context=f"run {run_id}")


def restore_protected(workdir: Path, before: Protected, run_id: str) -> list[memory.Incident]:
    """Undo an agent's changes to .git/config, .git/info/ and AGENTS.md's core policy; one incident each."""
    incidents = []
    config = workdir / ".git" / "config"
    if not config.exists() or config.read_bytes() != before.git_config:
        config.write_bytes(before.git_config)
        incidents.append(_git_incident(".git/config", run_id))
    if _restore_git_info(workdir, before):
        incidents.append(_git_incident(".git/info", run_id))
    violation = core_policy.check_and_restore(workdir, before.agents_md)
    if violation:
        incidents.append(core_policy.incident(violation, context=f"run {run_id}"))
    return incidents


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
    """The repo's checks: ``verify:`` from repos.yaml, else detected in the work tree."""
    return verify.checks_from_config(list(entry.verify)) if entry.verify is not None else verify.detect_checks(workdir)


_WATCHED: set[tuple[str, str, str]] = set()


@contextlib.contextmanager
def lease_watch(workspace: Path, repo: str, run_id: str) -> Iterator[None]:
    """While the block runs, every process group started is listed in ``run_id``'s lease of ``repo`` (so a
    later run can kill what a killed task left). Re-entrant: an inner watch of the same lease adds nothing."""
    key = (str(workspace), repo, run_id)
    if key in _WATCHED:
        yield
        return
    _WATCHED.add(key)
    try:
        with runner.watching(lambda pgid: lease.record_group(workspace, repo, run_id, pgid),
                             lambda pgid: lease.forget_group(workspace, repo, run_id, pgid)):
            yield
    finally:
        _WATCHED.discard(key)


class AgentSession:
    """The agent's runs in one work tree for one step, with every rule around them (module docstring).

    ``steering`` is the step's steering prompt file (the repo's ``steering:`` or PROMPTS_FILE; the
    incubator template for a bootstrap). Incidents the session finds go to ``on_incident`` (by default
    appended to the work tree's INCIDENTS.md). ``guard_policy`` defaults to the settings' policy.
    """

    def __init__(self, settings: Settings, *, repo: str, run_id: str, git: Git, steering: Path,
                 on_incident: Callable[[memory.Incident], None] | None = None,
                 guard_policy: guards.GuardPolicy | None = None) -> None:
        self.settings = settings
        self.repo = repo
        self.run_id = run_id
        self.git = git
        self.workdir = Path(git.path)
        self.steering = steering
        self.agent = build_agent(settings)
        self.on_incident = on_incident or (lambda incident: memory.append_incident(self.workdir, repo, incident))
        self.guard_policy = guard_policy or guards.GuardPolicy.from_settings(settings)
        self.tokens = 0
        #: Untracked files in the work tree before the session's first agent run: never the agent's work.
        self.leftovers: frozenset[str] | None = None

    def texts(self) -> prompts.PromptTexts:
        """The core directive and this step's steering: what every prompt of the session starts with."""
        return prompts.load_texts(self.settings.core_prompt_file, self.steering)

    def run_budget_spent(self) -> str | None:
        """Why no new pass may start in this run (CLONE_MAX_TOKENS_PER_RUN spent), or None."""
        limit = self.settings.max_tokens_per_run
        spent = budget.spent(self.settings.workspace, self.run_id) if limit else 0
        if limit and spent >= limit:
            return (f"the run's token budget is spent ({spent} >= CLONE_MAX_TOKENS_PER_RUN={limit}); "
                    "no new pass starts in this run")
        return None

    def run_agent(self, prompt: str, kind: str) -> AgentResult:
        """Snapshot -> the agent (watched by the lease) -> restore -> the ledger. An AgentError is raised
        only after the restore and the ledger entry; its ``result`` (if any) says what the agent spent."""
        before = snapshot_protected(self.workdir)
        if self.leftovers is None:
            self.leftovers = before.untracked
        try:
            with lease_watch(self.settings.workspace, self.repo, self.run_id):
                result = self._invoke(prompt, kind)
        except AgentError as e:
            failed: AgentResult | None = getattr(e, "result", None)
            self._spend(failed.total_tokens if failed else 0, kind)
            self._restore(before)
            raise
        self._spend(result.total_tokens, kind)
        self._restore(before)
        return result

    def _invoke(self, prompt: str, kind: str) -> AgentResult:
        """The one place an agent process is started (a sandbox wraps it here)."""
        return self.agent.run(AgentRun(workdir=self.workdir, prompt=prompt, repo_name=self.repo, pass_kind=kind))

    def _spend(self, tokens: int, kind: str) -> None:
        self.tokens += tokens
        budget.record(self.settings.workspace, self.run_id, self.repo, kind, tokens)

    def _restore(self, before: Protected) -> None:
        for incident in restore_protected(self.workdir, before, self.run_id):
            self.on_incident(incident)

    def keep(self, tree: str, parent: str | None, label: str) -> str:
        return keep_work(self.git, tree, parent, label)

    def guard(self, base: str, tree: str, *, label: str) -> list[guards.Finding]:
        """The guards on ``base..tree``; blocking findings keep the work under ``refs/clone/<label>/`` and
        raise :class:`GuardsBlocked`. Returns every finding (warnings included)."""
        findings = guards.scan(self.git, base, tree, self.guard_policy)
        if findings:
            log.warning("guards:\n%s", guards.render(findings))
        blocking = guards.blocking(findings)
        if blocking:
            ref = self.keep(tree, None if base == EMPTY_TREE else base, label)
            raise GuardsBlocked(f"{self.repo}: the guards blocked the work (kept at {ref}):\n"
                                f"{guards.render(blocking)}", ref=ref, findings=blocking)
        return findings

    def commit(self, base: str, tree: str, message: str) -> str | None:
        """Commit ``tree`` by the commit rule (:func:`commit_work`), leaving out the leftovers."""
        return commit_work(self.git, base, tree, message, leftovers=self.leftovers or ())

    def finish(self, base: str, tree: str, message: str, *, label: str) -> tuple[str | None, list[guards.Finding]]:
        """Guards, then the commit: (the commit or None, the findings)."""
        findings = self.guard(base, tree, label=label)
        return self.commit(base, tree, message), findings
