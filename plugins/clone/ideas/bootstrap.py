"""From an idea to a project in the fleet: the four resumable steps of ``clone_ideas``.

triage (a safe repo_name whose target is free or already ours) -> bootstrap (``git init`` under
CLONE_CODE_ROOT, the agent with an incubator prompt, memory docs, one commit) -> publish (a private
GitHub repo, created or reused, as ``origin``; push main) -> enrol (repos.yaml; status ACTIVE).

Each step checks what is already done and does only the rest, so a run after a failure continues
where the last one stopped. :func:`run_step` turns any failure into status BLOCKED with a
``last_error`` a person can act on; failures that may clear by themselves (GitHub unreachable, 5xx,
rate limits, a failed push) also get ``retry_at`` so the next run tries again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clone.fleet import repos_file as fleet
from clone.checks import guards
from clone.ideas import ideas_file as ideas
from clone.memory import docs as memory
from clone.memory.prompts import build_incubator_prompt
from clone.errors import AgentError, CloneError
from clone.util import git_auth
from clone.util.git import Git, redact_url
from clone.github.repos import GitHubRepo, GitHubUnavailable, ensure_private_repo

if TYPE_CHECKING:
    from clone.github.client import GitHubClient
from clone.ideas.ideas_file import ACTIVE, TRIAGED, Idea
from clone.ideas.names import derive_repo_name, repo_name_problem
from clone.state import lease
from clone.work.session import EMPTY_TREE, AgentSession, GuardsBlocked, commit_message
from clone.checks.redact import mask_secrets
from clone.config.settings import PROMPTS_DIR, Settings
from clone.work.workspace import identity

log = logging.getLogger(__name__)

INCUBATOR_PROMPT = PROMPTS_DIR / "incubator_prompt.md"
IDEA_CONFIG_KEY = "clone.idea"  # in the new repo's .git/config: which idea created it
PUSH_ATTEMPTS = 3


class StepFailed(CloneError):
    """A step cannot go on; ``retry`` says whether trying again later may work without a person."""

    def __init__(self, message: str, *, retry: bool = False) -> None:
        super().__init__(message)
        self.retry = retry


class StepSkipped(CloneError):
    """Nothing to do for this idea in this step (it is ACTIVE already)."""


class IdeaBlocked(CloneError):
    """A step failed and the idea is now BLOCKED; the message carries its ``last_error``."""


def target_dir(settings: Settings, name: str) -> Path:
    """Where the idea's project lives: ``CLONE_CODE_ROOT/<repo_name>``."""
    return settings.code_root / name


def _has_own_git(path: Path) -> bool:
    # Not Git(path).is_repo(): that would also say yes inside a repo that merely contains path.
    return (path / ".git").is_dir()


def idea_marker(path: Path) -> str | None:
    """The idea id recorded in ``path``'s own .git/config by the bootstrap that created it."""
    if not _has_own_git(path):
        return None
    result = Git(path).run("config", "--local", "--get", IDEA_CONFIG_KEY, check=False)
    return result.stdout.strip() or None


def ownership_problem(target: Path, idea: Idea) -> str | None:
    """Why ``target`` cannot be this idea's project directory (someone else's project), or None."""
    if idea.repo_path and Path(idea.repo_path) != target and Path(idea.repo_path).exists():
        return (f"this idea was bootstrapped in {idea.repo_path}, but its repo_name now points at {target}; "
                "put repo_name back, or move that directory to the new name")
    if target.is_symlink():
        return f"{target} is a symbolic link; choose another repo_name or remove the link"
    if not target.exists() or (target.is_dir() and not any(target.iterdir())):
        return None
    if target.is_dir() and idea_marker(target) == idea.id:
        return None  # we created it for this idea in an earlier run
    return (f"{target} already exists and is not this idea's project (clone_ideas did not create it for idea "
            f"{idea.id!r}); choose another repo_name or move that directory away")


def triage(settings: Settings, idea: Idea) -> Idea:
    """Check the repo_name and its target; save the idea as TRIAGED."""
    name = derive_repo_name(idea) if idea.repo_name is None else idea.repo_name
    if not name and idea.repo_name is None:
        raise StepFailed("the idea has no repo_name and none can be derived from its title; set repo_name")
    problem = repo_name_problem(name)
    if problem:
        shown = name if len(name) <= 60 else name[:57] + "..."
        raise StepFailed(f"repo_name {shown!r} is not a safe directory name: {problem}; set repo_name to "
                         "something like 'my-project'")
    target = target_dir(settings, name)
    if target.parent.resolve() != settings.code_root.resolve():
        raise StepFailed(f"{target} is not directly under CLONE_CODE_ROOT={settings.code_root}")
    problem = ownership_problem(target, idea)
    if problem:
        raise StepFailed(problem)
    entries, _ = fleet.load_fleet(settings.repos_file)
    for entry in entries:
        if entry.name == name and (not entry.path or Path(entry.path).resolve() != target.resolve()):
            raise StepFailed(f"{settings.repos_file} already has a repo named {name!r} "
                             f"({entry.path or entry.url}); "
                             "choose another repo_name")

    def name_is_free(others: list[Idea]) -> None:  # under the file's lock: two ideas cannot both claim it
        for other in others:
            taken = other.repo_name or (Path(other.repo_path).name if other.repo_path else "")
            if taken.casefold() == name.casefold():
                raise StepFailed(f"repo_name {name!r} is already used by idea {other.id!r}; choose another")

    log.info("triage: idea %s -> %s", idea.id, target)
    return ideas.set_status(settings.ideas_file, idea.id, TRIAGED, repo_name=name, check=name_is_free)


def bootstrap(settings: Settings, idea: Idea, run_id: str, dag_id: str = "clone_ideas") -> Idea:
    """Create the project directory (once), run the agent in it, make sure the memory docs exist, commit."""
    name = idea.repo_name or ""
    target = target_dir(settings, name)
    problem = ownership_problem(target, idea)
    if problem:
        raise StepFailed(problem)
    git = Git(target, identity(settings))
    if _has_own_git(target) and git.rev("refs/heads/main"):
        log.info("bootstrap: %s already has a commit on main; not running the agent again", target)
        return ideas.update_idea(settings.ideas_file, idea.id, {"repo_path": str(target)})
    if not _has_own_git(target):
        log.info("bootstrap: creating %s", target)
        git = Git.init(target, identity(settings), "main")
        git.run("config", "--local", "--", IDEA_CONFIG_KEY, idea.id)
    else:
        log.info("bootstrap: resuming in %s (created by an earlier run, nothing committed yet)", target)
    now = ideas.timestamp()
    idea = ideas.update_idea(settings.ideas_file, idea.id, {"repo_path": str(target), "updated_at": now})
    memory.ensure_docs(target, name)
    holder = lease.acquire(settings.workspace, name, run_id, settings.agent_timeout_minutes * 60 + 3600,
                           dag_id=dag_id, run_state=lease.dagrun_state)
    if holder:
        raise StepFailed(f"another run is working on {name} ({holder})", retry=True)
    try:
        sha = _run_agent(settings, idea, run_id, git, name)
    finally:
        lease.release(settings.workspace, name, run_id)
    log.info("bootstrap: committed %s in %s", (sha or "nothing")[:12], target)
    if not git.rev("refs/heads/main"):
        raise StepFailed(f"nothing was committed on main in {target}")
    return ideas.update_idea(settings.ideas_file, idea.id, {"bootstrapped_at": ideas.timestamp(),
                                                            "updated_at": ideas.timestamp()})


def _run_agent(settings: Settings, idea: Idea, run_id: str, git: Git, name: str) -> str | None:
    """The incubator agent through the agent session, then one commit on main by the commit rule. The
    guards run as everywhere; only secrets block, since a new project has no checks to weaken."""
    session = AgentSession(settings, repo=name, run_id=run_id, git=git, steering=INCUBATOR_PROMPT,
                           guard_policy=guards.GuardPolicy(settings.protected_paths, weakening="warn"))
    texts = session.texts()
    git.snapshot_tree()  # the docs (and an earlier attempt's work) are the project's, not leftovers
    try:
        result = session.run_agent(build_incubator_prompt(texts.core, texts.steering, idea, name), "bootstrap")
    except AgentError as e:
        raise StepFailed(f"{e}; its partial work is kept in {git.path}") from e
    memory.ensure_docs(git.path, name)
    git.run("symbolic-ref", "HEAD", "refs/heads/main")  # commit on main whatever the agent did
    message = commit_message("bootstrap", name, run_id, result.last_message, result.total_tokens or None)
    try:
        sha, _ = session.finish(EMPTY_TREE, git.snapshot_tree(), message, label="bootstrap-blocked")
    except GuardsBlocked as e:
        raise StepFailed(f"the secret scan blocked the agent's work: {guards.render(e.findings)}; nothing was "
                         f"committed on main, the work is kept at {e.ref} in {git.path}") from e
    return sha


def history_is_ours(git: Git, url: str, main: str) -> bool:
    """Whether the remote at ``url`` is empty or holds only commits our local ``main`` already has."""
    listing = git.run("ls-remote", "--heads", "--", url, check=False, timeout=120)
    if not listing.ok:
        raise StepFailed(f"cannot read {redact_url(url)} (git ls-remote): {redact_url(listing.tail(5))}; "
                         "check that your git credentials can reach it", retry=True)
    heads = [line.split()[0] for line in listing.stdout.splitlines() if line.strip()]
    return all(git.rev(sha) and git.is_ancestor(sha, main) for sha in heads)


def _push(git: Git, url: str) -> None:
    """Push main to origin, never forced; a couple of quick retries (a new repo may take a moment)."""
    for attempt in range(1, PUSH_ATTEMPTS + 1):
        result = git.run("push", "--porcelain", "origin", "refs/heads/main:refs/heads/main", check=False,
                         timeout=600)
        if result.ok:
            return
        tail = redact_url(result.tail(8))
        # "[rejected]" is a moved main; "[remote rejected]" (permissions, hooks) may clear: retried below.
        if "[rejected]" in tail or "non-fast-forward" in tail or "fetch first" in tail:
            raise StepFailed(f"git push to {redact_url(url)} was rejected: its main has commits this project "
                             f"does not have: {tail}")
        if attempt == PUSH_ATTEMPTS:
            raise StepFailed(f"git push to {redact_url(url)} failed: {tail}; check that your git credentials "
                             "can push there", retry=True)
        log.warning("publish: push attempt %d failed, retrying: %s", attempt, tail)
        time.sleep(2.0 * attempt)


def publish(settings: Settings, idea: Idea, api: GitHubClient) -> Idea:
    """Create (or reuse) the private GitHub repo, make it ``origin`` and push main."""
    target = Path(idea.repo_path) if idea.repo_path else target_dir(settings, idea.repo_name or "")
    git = Git(target, identity(settings))
    main = git.rev("refs/heads/main") if _has_own_git(target) else None
    if not main:
        raise StepFailed(f"{target} has no commit on main to publish; set status to TRIAGED to bootstrap again")
    secrets = [f for f in guards.scan(git, EMPTY_TREE, main) if f.rule == "secret"]
    if secrets:
        raise StepFailed(f"not publishing {target}: the secret scan found {guards.render(secrets)}; remove "
                         "it from the commit on main (e.g. git commit --amend)")

    def is_ours(repo: GitHubRepo) -> bool:
        url = repo.url(settings.git_protocol)  # pushed to with the token, scoped (CLONE_GIT_AUTH)
        git.auth = git_auth.for_remote(url, entry_name=idea.repo_name or "", conn_id=settings.github_conn_id)
        return history_is_ours(git, url, main)

    repo, created = ensure_private_repo(api, owner=settings.github_owner or None, name=idea.repo_name or "",
                                        description=idea.title or idea.summary, recorded=idea.github,
                                        is_ours=is_ours)
    if idea.github != repo.full_name:  # saved at once: the next run reuses it instead of creating another
        idea = ideas.update_idea(settings.ideas_file, idea.id, {"github": repo.full_name,
                                                                "updated_at": ideas.timestamp()})
    url = repo.url(settings.git_protocol)
    if redact_url(url) != url:
        raise StepFailed(f"the GitHub API returned a clone URL for {repo.full_name} with credentials in it; "
                         "refusing to store it in .git/config")
    current = git.remote_url("origin")
    if current is None:
        git.run("remote", "add", "--", "origin", url)
    elif current != url:
        log.info("publish: origin was %s; setting it to %s", redact_url(current), redact_url(url))
        git.run("remote", "set-url", "--", "origin", url)
    git.auth = git_auth.for_remote(url, entry_name=idea.repo_name or "", conn_id=settings.github_conn_id)
    _push(git, url)
    git.run("update-ref", "refs/remotes/origin/main", main)
    git.run("branch", "--quiet", "--set-upstream-to=origin/main", "main", check=False)
    log.info("publish: %s %s; main %s pushed to %s", repo.full_name, "created" if created else "reused",
             main[:12], redact_url(url))
    return ideas.update_idea(settings.ideas_file, idea.id, {"published_at": ideas.timestamp(),
                                                            "updated_at": ideas.timestamp()})


def enrol(settings: Settings, idea: Idea) -> Idea:
    """Add the project to repos.yaml (once) and mark the idea ACTIVE."""
    target = Path(idea.repo_path or target_dir(settings, idea.repo_name or ""))
    added = fleet.enrol_repo(settings.repos_file, target, idea.repo_name or target.name, github=idea.github,
                             branch="main", comment=f"added by clone_ideas for idea {idea.id}")
    entries, problems = fleet.load_fleet(settings.repos_file)
    if not any(e.path and Path(e.path).resolve() == target.resolve() for e in entries):
        mine = [p for p in problems if str(target) in p]
        raise StepFailed(f"{settings.repos_file} has no valid entry for {target}: "
                         f"{'; '.join(mine) or 'see the repos.yaml problems in the log'}")
    log.info("enrol: %s %s %s", target, "added to" if added else "was already in", settings.repos_file)
    return ideas.set_status(settings.ideas_file, idea.id, ACTIVE)


def _reason(error: BaseException) -> str:
    text = str(error) if isinstance(error, CloneError) else f"{type(error).__name__}: {error}"
    return " ".join(mask_secrets(redact_url(text)).split())[:1500].rstrip(".")


def run_step(step: str, settings: Settings, idea_id: str, action: Callable[[Idea], Idea]) -> dict[str, Any]:
    """Run one step on the idea as the file says now; on failure mark it BLOCKED and raise IdeaBlocked."""
    idea = ideas.get_idea(settings.ideas_file, idea_id)
    if idea.status == ACTIVE:
        raise StepSkipped(f"idea {idea_id!r} is ACTIVE already; nothing to do")
    try:
        return action(idea).to_dict()
    except Exception as e:
        retry = isinstance(e, GitHubUnavailable) or (isinstance(e, StepFailed) and e.retry)
        hint = ("The next run retries it by itself." if retry else
                "Fix that, then set status to TRIAGED to retry (work already done is kept).")
        message = f"{step}: {_reason(e)}. {hint}"
        ideas.block(settings.ideas_file, idea_id, message, retry=retry)
        log.error("idea %s is BLOCKED: %s", idea_id, message)
        raise IdeaBlocked(f"idea {idea_id!r} in {settings.ideas_file} is BLOCKED: {message}") from e
