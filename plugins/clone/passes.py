"""One agent pass on one repo: workspace, memory docs, prompt, agent, commit."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from clone import memory, prompts
from clone.agents import AgentRun, build_agent
from clone.fleet import RepoEntry
from clone.settings import Settings
from clone.workspace import Workspace, prepare

log = logging.getLogger(__name__)


def read_docs(workdir: Path) -> dict[str, str]:
    return {doc: memory.read_doc(workdir, doc) for doc in memory.DOCS}


def commit_message(kind: str, repo: str, run_id: str, agent_summary: str, tokens: int | None) -> str:
    """The bot's commit message: a fixed subject, the agent's own summary as the body."""
    subject = {"pass": "maintenance pass", "autofix": "fix CI failure", "bootstrap": "bootstrap project"}[kind]
    body = "\n".join(line.rstrip() for line in agent_summary.strip().splitlines()[:40])[:3000]
    trailer = f"Clone-Run: {run_id}\nClone-Pass: {kind}"
    if tokens:
        trailer += f"\nClone-Tokens: {tokens}"
    return f"clone: {subject} on {repo}\n\n" + (f"{body}\n\n" if body else "") + trailer + "\n"


def run_pass(entry: RepoEntry, settings: Settings, run_id: str) -> dict[str, Any]:
    """Prepare the workspace, run the agent, commit what it changed. Returns the pass result."""
    ws: Workspace = prepare(entry, settings)
    workdir = Path(ws.workdir)
    created = memory.ensure_docs(workdir, entry.name)
    if created:
        log.info("pass: created missing memory docs: %s", ", ".join(created))
    texts = prompts.load_texts(settings.core_prompt_file, settings.prompts_file)
    prompt = prompts.build_pass_prompt(
        texts,
        repo_name=entry.name,
        tasks_per_repo=entry.tasks_per_repo or settings.tasks_per_repo,
        docs=read_docs(workdir),
        include_agents_md=settings.agent != "codex",  # codex reads AGENTS.md by itself
    )
    agent = build_agent(settings)
    result = agent.run(AgentRun(workdir=workdir, prompt=prompt, repo_name=entry.name, pass_kind="pass"))
    git = ws.git(settings)
    sha = git.commit_all(commit_message("pass", entry.name, run_id, result.last_message,
                                        result.usage.get("total_tokens")))
    if sha is None:
        log.info("pass: the agent changed nothing in %s; push, CI wait and autofix are skipped", entry.name)
    else:
        files = git.changed_files(ws.base_sha, sha)
        log.info("pass: committed %s on %s (%d file(s): %s)", sha[:12], ws.branch, len(files),
                 ", ".join(files[:20]) + (" ..." if len(files) > 20 else ""))
    return {
        **ws.to_dict(),
        "head_sha": sha or ws.base_sha,
        "changed": sha is not None,
        "agent": result.to_dict(),
    }
