"""What a repo's lease says, read the way a person would: from its remote's ``refs/clone/lease/<repo>`` (a repo
with a remote; ``{}`` there means free), else from ``CLONE_WORKSPACE/leases/<repo>.json``; the process groups a worker listed come from
that worker's ``leases/<repo>.groups.json`` beside it (README: Shared state)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path


def read_lease(workspace: Path, repo: str, bare: Path | None = None) -> dict:
    """The lease document ({} when free), with ``groups`` from this workspace when the lease is remote."""
    if bare is None:
        try:
            return json.loads((workspace / "leases" / f"{repo}.json").read_text())
        except (OSError, ValueError):
            return {}
    shown = subprocess.run(["git", "-C", str(bare), "show", f"refs/clone/lease/{repo}:lease.json"],
                           capture_output=True, text=True, timeout=60)
    if shown.returncode:
        return {}
    doc = json.loads(shown.stdout)
    if not doc:
        return {}  # released: the ref stays, its newest commit says "free"
    try:
        local = json.loads((workspace / "leases" / f"{repo}.groups.json").read_text())
    except (OSError, ValueError):
        local = {}
    if local.get("run_id") == doc.get("run_id"):
        doc["groups"] = local.get("groups") or []
    return doc
