"""Pushing a pass's commits: never forced; a moved remote is fetched and rebased onto, a bounded number
of times; a conflict is aborted cleanly and recorded in INCIDENTS.md."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from clone.memory import docs as memory
from clone.errors import GitError, PushConflict
from clone.state import incident_log
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
                    remote: str | None = "origin", *, mode: str = "direct", work_branch: str | None = None,
                    workspace: Path | None = None) -> str:
    """Record an INCIDENTS.md entry for the repo as the push mode allows; returns where it is (for messages).

    The entry is committed on its own, never on top of the chain's own commits (which may be red, blocked
    or unverified): in ``direct`` mode on the freshly fetched ``branch``, pushed there; in ``gated`` and
    ``pr`` modes never on the protected branch: on the chain's ``work_branch`` (the PR's head), pushed
    there so it travels with the work, or, without one, only in the workspace. What is not pushed (no
    remote, dry run, gated/pr without a work branch, a rejected push) is kept in the workspace under
    ``refs/clone/incidents/<time>``. ``workspace``: the run's incident list, which the run note shows.
    """
    onto = branch if mode == "direct" else work_branch
    if remote is not None:
        source = onto or branch
        ws.fetch(remote, f"+refs/heads/{source}:refs/remotes/{remote}/{source}")
        if ws.rev(f"{remote}/{source}"):
            ws.run("checkout", "--quiet", "--force", "-B", branch, f"{remote}/{source}")
            ws.run("clean", "-ffd", "--quiet")
    memory.append_incident(Path(ws.path), repo_name, incident)
    ws.stage(memory.INCIDENTS)
    sha = ws.commit_index(f"clone: record {incident.kind} incident\n\n{incident.title}\n\nClone-Run: {run_id}\n")
    if sha is None:
        where = "already in INCIDENTS.md"
    elif remote is None:
        where = f"committed in the workspace {ws.path} (no remote or a dry run: not pushed)"
    elif onto is None:
        where = (f"kept in the workspace {ws.path} at {_keep_incident(ws, sha)} ({mode} mode never pushes to "
                 f"{branch} outside landing, and this chain has no work branch)")
    else:
        try:
            push_branch(ws, onto, remote, attempts=2)
            where = f"pushed to {onto}" + ("" if mode == "direct" else " (the work branch)")
        except GitError as e:
            reason = str(e).splitlines()[0][:300]
            where = f"NOT pushed (the push to {onto} was rejected: {reason}); kept in the workspace at " \
                    f"{_keep_incident(ws, sha)}"
    log.warning("incident %s: %s", incident.kind, where)
    if workspace is not None:
        incident_log.record(workspace, run_id, repo_name, f"{incident.kind}: {incident.title}", where)
    return where


def _keep_incident(ws: Git, sha: str) -> str:
    """Keep an unpushed incident commit under a ref, and take it off the local branch."""
    ref = f"refs/clone/incidents/{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S%fZ}"
    ws.run("update-ref", ref, sha)
    ws.run("reset", "--quiet", "--hard", "HEAD~1")
    return ref


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
                         remote: str = "origin", *, mode: str = "direct",
                         workspace: Path | None = None) -> tuple[str, str]:
    """Keep our commits under a ref, reset to the remote, and record an INCIDENTS.md entry.

    Returns the ref holding the unpushed work and where the incident is (:func:`record_incident`).
    """
    ours = ws.head()
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    ref = f"refs/clone/unpushed/{stamp}"
    ws.run("update-ref", ref, ours)
    where = record_incident(ws, branch, repo_name, memory.Incident(
        kind="push-conflict",
        title=f"pass commits did not rebase onto {branch}",
        what_happened=f"The pass's commit {ours[:12]} could not be pushed: {branch} moved while the agent "
                      f"worked and rebasing onto it conflicted. The work was not pushed.",
        root_cause=str(conflict).splitlines()[0],
        prevention="Keep passes short and focused so they rarely overlap with human changes to the same "
                   "files; the next pass starts from the new branch head.",
        context=f"run {run_id}; unpushed work kept in the workspace at {ref} ({ours})",
    ), run_id, remote, mode=mode, workspace=workspace)
    return ref, where
