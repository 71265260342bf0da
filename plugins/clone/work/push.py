"""Pushing a pass's commits: never forced; a moved remote is fetched and rebased onto, a bounded number
of times; a conflict is aborted cleanly and recorded in INCIDENTS.md."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from clone.memory import docs as memory
from clone.errors import GitError, PushConflict
from clone.util.git import Git

log = logging.getLogger(__name__)

PUSH_ATTEMPTS = 3


def push_branch(ws: Git, branch: str, remote: str = "origin", attempts: int = PUSH_ATTEMPTS) -> str:
    """Push HEAD to ``remote``/``branch``, rebasing onto the remote when it moved. Returns the pushed sha.

    Raises PushConflict (after ``git rebase --abort``) when our commits do not apply on the
    new remote head, and GitError when the push keeps failing for another reason.
    """
    last_error: GitError | None = None
    for attempt in range(1, attempts + 1):
        sha = ws.head()
        result = ws.run("push", "--porcelain", remote, f"HEAD:refs/heads/{branch}", check=False, timeout=600)
        if result.ok:
            log.info("push: %s -> %s/%s (attempt %d)", sha, remote, branch, attempt)
            return sha
        last_error = GitError(f"git push to {remote}/{branch} failed: {result.tail(10)}",
                              argv=result.argv, returncode=result.returncode, output=result.tail())
        log.warning("push: attempt %d rejected: %s", attempt, result.tail(5))
        ws.fetch(remote, f"+refs/heads/{branch}:refs/remotes/{remote}/{branch}")
        upstream = ws.rev(f"{remote}/{branch}")
        if upstream is None or ws.is_ancestor(upstream, "HEAD"):
            raise last_error  # not a moved remote: permissions, hooks, network...
        log.info("push: %s/%s moved to %s; rebasing our commits onto it", remote, branch, upstream[:12])
        ws.rebase(f"{remote}/{branch}")
    raise GitError(f"push to {remote}/{branch} still rejected after {attempts} attempts") from last_error


def record_incident(ws: Git, branch: str, repo_name: str, incident: memory.Incident, run_id: str,
                    remote: str | None = "origin") -> None:
    """Record an INCIDENTS.md entry on top of the freshly fetched ``branch`` and push it (best effort).

    The entry is committed on its own on the remote branch's head, never on top of the chain's own
    commits (which may be red, blocked or unverified). ``remote=None`` (no remote, dry run) keeps it
    local. Callers keep the chain's work under a ref first if it must not be lost.
    """
    if remote is not None:
        ws.fetch(remote, f"+refs/heads/{branch}:refs/remotes/{remote}/{branch}")
        if ws.rev(f"{remote}/{branch}"):
            ws.run("checkout", "--quiet", "--force", "-B", branch, f"{remote}/{branch}")
            ws.run("clean", "-ffd", "--quiet")
    memory.append_incident(Path(ws.path), repo_name, incident)
    commit_and_push(ws, branch, f"clone: record {incident.kind} incident\n\n{incident.title}\n\nClone-Run: {run_id}\n",
                    (memory.INCIDENTS,), remote)


def commit_and_push(ws: Git, branch: str, message: str, paths: tuple[str, ...], remote: str | None = "origin") -> None:
    """Commit ``paths`` (the orchestrator's own record) and push it, best effort: a failure is logged."""
    ws.stage(*paths)
    if ws.commit_index(message) is None or remote is None:
        return
    try:
        push_branch(ws, branch, remote, attempts=2)
    except GitError as e:
        log.warning("could not push %r: %s", message.splitlines()[0], e)


def record_push_conflict(ws: Git, branch: str, repo_name: str, conflict: PushConflict, run_id: str,
                         remote: str = "origin") -> str:
    """Keep our commits under a ref, reset to the remote, and push an INCIDENTS.md entry.

    Returns the ref holding the unpushed work.
    """
    ours = ws.head()
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    ref = f"refs/clone/unpushed/{stamp}"
    ws.run("update-ref", ref, ours)
    record_incident(ws, branch, repo_name, memory.Incident(
        kind="push-conflict",
        title=f"pass commits did not rebase onto {branch}",
        what_happened=f"The pass's commit {ours[:12]} could not be pushed: {branch} moved while the agent "
                      f"worked and rebasing onto it conflicted. The work was not pushed.",
        root_cause=str(conflict).splitlines()[0],
        prevention="Keep passes short and focused so they rarely overlap with human changes to the same "
                   "files; the next pass starts from the new branch head.",
        context=f"run {run_id}; unpushed work kept in the workspace at {ref} ({ours})",
    ), run_id, remote)
    return ref
