"""The private clone a pass works in, under ``CLONE_WORKSPACE``.

The user's checkout is only read (its remote URL); passes work in
``CLONE_WORKSPACE/repos/<name>``, a clone of the repo's remote, reset to the freshly fetched
remote branch at the start of every pass. Without a remote, the clone is made from the
user's checkout itself, and nothing is ever pushed back to it. A ``url:`` entry has no checkout:
its URL is the remote, and the clone under ``CLONE_WORKSPACE`` is a per-worker cache made again
whenever it is missing (a fresh worker, a new pod).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
from pathlib import Path
from typing import Any

from clone.errors import GitError
from clone.fleet.remote_url import github_slug_from_url  # noqa: F401 - also imported from here
from clone.fleet.repos_file import RepoEntry
from clone.util import git_auth
from clone.util.git import Git, Identity, redact_url
from clone.util.git_auth import GitAuth
from clone.config.settings import Settings

log = logging.getLogger(__name__)

@dataclasses.dataclass(frozen=True)
class Workspace:
    """Where a pass works and what it is based on."""

    repo: str
    workdir: str
    branch: str
    base_sha: str
    has_remote: bool
    github: str | None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def git(self, settings: Settings, entry: RepoEntry) -> Git:
        """The workspace's Git, its network commands with ``entry``'s scoped credential (:func:`auth_for`)."""
        return Git(Path(self.workdir), identity(settings), auth_for(entry, settings, remote_url_of(entry)))


def auth_for(entry: RepoEntry, settings: Settings, url: str | None) -> GitAuth:
    """The scoped credential of ``entry``'s remote (:mod:`clone.util.git_auth`)."""
    return git_auth.for_remote(url, entry_name=entry.name, deploy_key=entry.deploy_key,
                               conn_id=settings.github_conn_id)


def identity(settings: Settings) -> Identity:
    return Identity(settings.git_author_name, settings.git_author_email)


def workdir_for(settings: Settings, name: str) -> Path:
    return settings.workspace / "repos" / name


def _save_unpushed(ws: Git, branch: str) -> None:
    """Keep commits a previous pass made but never pushed under refs/clone/unpushed/."""
    head = ws.rev("HEAD")
    upstream = ws.rev(f"origin/{branch}")
    if head and upstream and head != upstream and not ws.is_ancestor(head, upstream):
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        ref = f"refs/clone/unpushed/{stamp}"
        ws.run("update-ref", ref, head)
        log.warning("workspace: commits never pushed from an earlier pass are kept at %s (%s)", ref, head[:12])


def _source(entry: RepoEntry) -> tuple[str, str | None]:
    """Where the workspace is cloned from, and the remote URL (None: a local checkout without a remote)."""
    remote_url = entry.url or Git(Path(str(entry.path))).remote_url(entry.remote)
    return remote_url or str(entry.path), remote_url


def remote_url_of(entry: RepoEntry) -> str | None:
    """The repo's remote URL (``url:``, or the checkout's remote), None without one or when this worker has
    no such checkout (then state such as the lease stays on this worker's disk)."""
    if entry.url:
        return entry.url
    try:
        return _source(entry)[1] if Path(str(entry.path)).is_dir() else None
    except GitError:
        return None


def _open(entry: RepoEntry, settings: Settings, source: str, remote_url: str | None) -> Git:
    """This worker's cache clone of the repo, cloned again from ``source`` when it is missing; its network
    commands carry the remote's scoped credential (:func:`auth_for`)."""
    workdir = workdir_for(settings, entry.name)
    if workdir.exists() and not Git(workdir).is_repo():
        raise GitError(f"workspace {workdir} exists but is not a git repository; move it away and retry")
    auth = auth_for(entry, settings, remote_url)
    if workdir.exists():
        ws = Git(workdir, identity(settings), auth)
        if ws.remote_url("origin") != source:
            ws.run("remote", "set-url", "--", "origin", source)
        return ws
    log.info("workspace: cloning %s into %s", redact_url(source), workdir)
    return Git.clone(source, workdir, identity(settings), auth)


def prepare(entry: RepoEntry, settings: Settings) -> Workspace:
    """Clone or refresh the repo's workspace and reset it to the fetched remote branch."""
    source, remote_url = _source(entry)
    if entry.url:
        log.info("workspace: %s is cloned from %s (no local checkout)", entry.name, redact_url(entry.url))
    elif remote_url:
        log.info("workspace: %s follows remote %r (%s)", entry.name, entry.remote, redact_url(remote_url))
    else:
        log.info("workspace: %s has no remote %r; working from the local checkout (nothing will be pushed)",
                 entry.name, entry.remote)
    workdir = workdir_for(settings, entry.name)
    ws = _open(entry, settings, source, remote_url)
    ws.fetch("origin", "+refs/heads/*:refs/remotes/origin/*")
    branch = entry.branch or ws.remote_default_branch("origin") or "main"
    base = ws.rev(f"origin/{branch}")
    if base is None:
        raise GitError(f"{entry.name}: branch {branch!r} does not exist on {redact_url(source)}; "
                       "set 'branch:' in repos.yaml")
    ws.run("rebase", "--abort", check=False)  # left over by a killed pass, if any
    _save_unpushed(ws, branch)
    ws.run("checkout", "--quiet", "--force", "-B", branch, f"origin/{branch}")
    ws.run("clean", "-ffd", "--quiet")
    log.info("workspace: %s at %s on %s (%s)", entry.name, workdir, branch, base[:12])
    return Workspace(
        repo=entry.name,
        workdir=str(workdir),
        branch=branch,
        base_sha=base,
        has_remote=remote_url is not None,
        github=entry.github or github_slug_from_url(remote_url),
    )


PENDING_PREFIX = "refs/clone/pending"


def _ref_part(text: str) -> str:
    """``text`` made safe as one ref name component (run ids hold ``:`` and ``+``)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")[:120] or "x"


def pending_ref(run_id: str, repo: str) -> str:
    """``refs/clone/pending/<run>/<repo>``: where a pass's commit waits on the remote for the chain's next task."""
    return f"{PENDING_PREFIX}/{_ref_part(run_id)}/{_ref_part(repo)}"


def publish_pending(ws: Git, run_id: str, repo: str, sha: str) -> str:
    """Push ``sha`` to the chain's pending ref on ``origin`` so that a task on any worker can fetch it.

    The ref is Clone's own (never a user branch) and only this run's chain of this repo writes it: an
    earlier try of the same pass may have left another commit there, which this one replaces."""
    ref = pending_ref(run_id, repo)
    ws.run("push", "--quiet", "--", "origin", f"+{sha}:{ref}", timeout=600)
    log.info("workspace: %s's commit %s is on the remote at %s", repo, sha[:12], ref)
    return ref


def drop_pending(ws: Git, ref: str | None) -> None:
    """Delete a pending ref from ``origin`` once its commit is on a branch (best effort: a leftover is harmless)."""
    if not ref or not ref.startswith(PENDING_PREFIX + "/"):
        return
    done = ws.run("push", "--quiet", "--delete", "--", "origin", ref, check=False, timeout=300)
    if not done.ok:
        log.warning("workspace: could not delete %s from the remote: %s", ref, done.tail(3))


def keep_on_remote(ws: Git, ref: str) -> bool:
    """Copy a local ``refs/clone/...`` ref of kept work to ``origin`` (so any worker, and people, can reach it)."""
    done = ws.run("push", "--quiet", "--", "origin", f"{ref}:{ref}", check=False, timeout=600)
    if not done.ok:
        log.warning("workspace: could not copy %s to the remote (kept in %s only): %s", ref, ws.path, done.tail(3))
    return done.ok


def attach(entry: RepoEntry, settings: Settings, branch: str, sha: str, pending: str | None = None) -> Git:
    """This worker's clone of the repo checked out at ``sha``, a commit of this chain that is on the remote
    (on a branch, or on the ``pending`` ref). The clone is made when this worker has none; nothing is read
    from another task's disk."""
    source, remote_url = _source(entry)
    ws = _open(entry, settings, source, remote_url)
    ws.fetch("origin", "+refs/heads/*:refs/remotes/origin/*")
    if ws.rev(sha) is None and pending:
        ws.fetch("origin", f"+{pending}:{pending}")  # our own ref name
    if ws.rev(sha) is None:
        raise GitError(f"{entry.name}: commit {sha} is on no branch of {redact_url(source)}"
                       + (f" nor at {pending}" if pending else "") + "; the chain cannot go on")
    ws.run("rebase", "--abort", check=False)
    ws.run("checkout", "--quiet", "--force", "-B", branch, sha)
    ws.run("clean", "-ffd", "--quiet")  # what a killed earlier try may have left (ignored files stay)
    return ws
