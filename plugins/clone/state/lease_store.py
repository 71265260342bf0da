"""Where a repo's lease document lives (see :mod:`clone.state.lease` for what it says).

* A repo with a remote: the ref ``refs/clone/lease/<repo>`` on that remote, a chain of commits whose tree
  holds ``lease.json``. Every change is a compare-and-swap done by the remote itself, with no force: the new
  document is committed as a child of the lease commit just read and pushed as a plain fast-forward. The
  remote applies it only while the ref still points at that parent (the client refuses a non-fast-forward
  or unknown tip, and the remote updates the ref only from the old value the push names), so of two workers
  (or runs) changing the lease at once one push is refused, and that writer reads again and re-decides.
  Releasing the lease is such a change too (a commit whose ``lease.json`` is ``{}``): a deletion could not
  be checked against what was read. The remote is the one store every worker of that repo already reaches,
  so exclusivity holds across workers, runs and machines; the ref's history grows by one small commit per
  change (``git log refs/clone/lease/<repo>`` is its audit trail).
* A repo without a remote (a local checkout, worked on by one machine): a file
  ``CLONE_WORKSPACE/leases/<repo>.json`` changed under an ``flock``, as before.

:func:`use_remote` names a repo's remote for this process (agent_pass and the summary call it from the
repos.yaml entry); a repo never named keeps the file.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from clone.errors import CloneError, GitError
from clone.util import yamlio
from clone.util.git import Git, Identity

log = logging.getLogger(__name__)

#: What a change function returns to leave the document as it is.
KEEP = object()
#: How often a refused compare-and-swap is retried (each time after reading the lease again).
CAS_ATTEMPTS = 8
_IDENTITY = Identity("Clone lease", "lease@clone.invalid")
_REMOTES: dict[str, str] = {}
_AUTH: dict[str, Any] = {}
#: (new document | None to delete | KEEP, value to return)
Change = Callable[[dict], "tuple[Any, Any]"]


class LeaseContention(CloneError):
    """The remote lease changed under every attempt (many writers at once)."""


def use_remote(repo: str, url: str | None, auth: Any = None) -> None:
    """Keep ``repo``'s lease on the remote ``url`` from now on in this process (None: the local file);
    ``auth`` is the remote's scoped credential (:mod:`clone.util.git_auth`), None: git's own."""
    if url:
        _REMOTES[repo] = url
        _AUTH[repo] = auth
    else:
        _REMOTES.pop(repo, None)
        _AUTH.pop(repo, None)


def remote_of(repo: str) -> str | None:
    return _REMOTES.get(repo)


def lease_ref(repo: str) -> str:
    return "refs/clone/lease/" + (re.sub(r"[^A-Za-z0-9_-]+", "-", repo).strip("-")[:120] or "x")


def lease_path(workspace: Path, repo: str) -> Path:
    return workspace / "leases" / f"{repo}.json"


def known(workspace: Path) -> list[str]:
    """Repos whose lease this process can find: those with a remote named, and the lease files here."""
    folder = workspace / "leases"
    files = [p.name.removesuffix(".json") for p in folder.glob("*.json")
             if not p.name.endswith(".groups.json")] if folder.is_dir() else []
    return sorted(set(files) | set(_REMOTES))


def transact(workspace: Path, repo: str, change: Change) -> Any:
    """Apply ``change`` to the repo's lease document atomically; returns what ``change`` returned."""
    url = _REMOTES.get(repo)
    return _remote(workspace, url, repo, change) if url else _file(lease_path(workspace, repo), change)


def groups_path(workspace: Path, repo: str) -> Path:
    return workspace / "leases" / f"{repo}.groups.json"


def transact_groups(workspace: Path, repo: str, change: Change) -> Any:
    """Apply ``change`` to the document listing the process groups a pass started (``run_id``, ``groups``).

    Process ids mean something only on the machine that started them, so with a remote lease they are
    kept beside it in this worker's ``leases/<repo>.groups.json``; with a file lease, in the lease itself."""
    if repo in _REMOTES:
        return _file(groups_path(workspace, repo), change)
    return transact(workspace, repo, change)


def _file(path: Path, change: Change) -> Any:
    path.parent.mkdir(parents=True, exist_ok=True)
    with yamlio.locked(path):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            data = {}
        new, value = change(data if isinstance(data, dict) else {})
        if new is None:
            path.unlink(missing_ok=True)
        elif new is not KEEP:
            yamlio.atomic_write_text(path, json.dumps(new) + "\n")
    return value


def _scratch(workspace: Path, auth: Any = None) -> Git:
    """A private repository holding only lease objects (this worker's; made when missing)."""
    path = workspace / "leases" / "objects.git"
    git = Git(path, _IDENTITY, auth)
    if not (path / "HEAD").exists():
        # Passes of one worker start in parallel: one of them makes it (two git inits at once collide on
        # the template files), the others wait and find it made; a half-made one from a killed init is
        # finished by git init, which is safe to run again.
        with yamlio.locked(path):
            if not (path / "HEAD").exists() or not (path / "objects").is_dir():
                path.mkdir(parents=True, exist_ok=True)
                git.run("init", "--quiet", "--bare")
    return git


def _read(git: Git, url: str, repo: str, ref: str) -> tuple[str, dict]:
    """The lease commit on the remote now ("" when there is none) and its document ({} when free)."""
    listed = git.run("ls-remote", "--", url, ref, timeout=120).stdout.split()
    seen = listed[0] if listed else ""
    if not seen:
        return "", {}
    if not git.run("cat-file", "-e", f"{seen}^{{commit}}", check=False).ok:  # not ours already: fetch it
        git.run("fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--", url, ref, timeout=120)
    try:
        data = json.loads(git.out("cat-file", "blob", f"{seen}:lease.json"))
    except (ValueError, GitError):
        log.warning("lease of %s at %s (%s) holds no JSON lease.json; treating it as free", repo, ref, seen[:12])
        data = {}
    return seen, data if isinstance(data, dict) else {}


def _remote(workspace: Path, url: str, repo: str, change: Change) -> Any:
    git, ref = _scratch(workspace, _AUTH.get(repo)), lease_ref(repo)
    for _ in range(CAS_ATTEMPTS):
        seen, data = _read(git, url, repo, ref)
        new, value = change(data)
        if new is None:
            new = {}  # free: a commit like any other change, so that it too is a compare-and-swap
        if new is KEEP or new == data and (seen or not new):
            return value
        blob = git.run("hash-object", "-w", "--stdin", stdin=json.dumps(new) + "\n").stdout.strip()
        tree = git.run("mktree", stdin=f"100644 blob {blob}\tlease.json\n").stdout.strip()
        parent = ["-p", seen] if seen else []
        commit = git.run("commit-tree", tree, *parent, "-m", f"clone lease of {repo}").stdout.strip()
        # No force: the remote takes it only as a fast-forward from ``seen`` (or as a new ref when none was seen).
        pushed = git.run("push", "--quiet", "--porcelain", "--", url, f"{commit}:{ref}", check=False, timeout=120)
        if pushed.ok:
            return value
        if not _refused(pushed.stdout + pushed.stderr):
            raise GitError(f"{repo}: cannot update the lease at {ref} on the remote: {pushed.tail(3)}")
        log.info("lease of %s changed while we decided (push refused: %s); reading it again", repo,
                 pushed.tail(2))
    raise LeaseContention(f"{repo}: the lease at {ref} kept changing under {CAS_ATTEMPTS} attempts to update it")


#: What git says when a push lost the race (someone else moved the ref first), not when it failed.
_LOST = ("non-fast-forward", "fetch first", "already exists", "failed to lock", "cannot lock ref",
         "failed to update ref", "but expected", "stale info")


def _refused(output: str) -> bool:
    return "rejected" in output and any(word in output for word in _LOST)
