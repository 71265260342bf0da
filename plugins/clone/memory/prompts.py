"""Prompt assembly: pure functions from texts to the prompt the agent receives."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from clone.memory import docs as memory
from clone.errors import ConfigError

#: Characters of each doc carried in the prompt. Memory keeps its head and tail (structure and
#: the latest history); incidents keep their tail (the latest failures).
DOC_BUDGETS = {memory.AGENTS: 12_000, memory.MEMORY: 24_000, memory.INCIDENTS: 8_000, memory.BACKLOG: 16_000}


GUARDS_NOTE = """## Guards the orchestrator enforces after you exit

- Your diff is scanned for secrets (API keys, tokens, private keys): any hit blocks the push.
- Deleted tests, new skip markers, edits to CI workflow files and to protected paths ({protected})
  are {weakening} by policy: fix the code, never the checks.
- The protected core-policy region of AGENTS.md is restored if you change it, and that is recorded as
  an incident.
- The repo's own checks run after you ({checks}); if they fail you get one chance to fix them, then
  the push is blocked.
"""


@dataclasses.dataclass(frozen=True)
class PromptTexts:
    core: str
    steering: str


def read_prompt_file(path: Path, knob: str) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{knob}={path}: cannot read the prompt file: {e}") from e
    if not text.strip():
        raise ConfigError(f"{knob}={path}: the prompt file is empty")
    return text


def load_texts(core_prompt_file: Path, steering_file: Path) -> PromptTexts:
    return PromptTexts(
        core=read_prompt_file(core_prompt_file, "CORE_PROMPT_FILE"),
        steering=read_prompt_file(steering_file, "PROMPTS_FILE"),
    )


def clip(text: str, budget: int, *, keep: str = "head+tail") -> str:
    """Cut ``text`` to about ``budget`` characters on line boundaries, saying what was cut."""
    if len(text) <= budget:
        return text
    lines = text.splitlines()
    if keep == "tail":
        kept: list[str] = []
        size = 0
        for line in reversed(lines):
            if size + len(line) + 1 > budget:
                break
            kept.insert(0, line)
            size += len(line) + 1
        return f"[... {len(lines) - len(kept)} earlier lines not shown ...]\n" + "\n".join(kept)
    head = clip_lines(lines, budget // 2)
    tail_text = clip("\n".join(lines[len(head):]), budget - sum(len(x) + 1 for x in head), keep="tail")
    return "\n".join(head) + "\n" + tail_text


def clip_lines(lines: list[str], budget: int) -> list[str]:
    kept, size = [], 0
    for line in lines:
        if size + len(line) + 1 > budget:
            break
        kept.append(line)
        size += len(line) + 1
    return kept


def _doc_section(doc: str, text: str) -> str:
    keep = "tail" if doc == memory.INCIDENTS else "head+tail"
    body = clip(text.strip(), DOC_BUDGETS[doc], keep=keep) if text.strip() else "(empty)"
    return f"### {doc}\n\n{body}\n"


def guards_note(protected_paths: Sequence[str], weakening: str, checks: Sequence[str]) -> str:
    return GUARDS_NOTE.format(
        protected=", ".join(protected_paths) or "none configured",
        weakening="blocked" if weakening == "block" else "flagged",
        checks=", ".join(f"`{c}`" for c in checks) or "none detected",
    )


def build_pass_prompt(texts: PromptTexts, *, repo_name: str, tasks_per_repo: int,
                      docs: Mapping[str, str], include_agents_md: bool,
                      top_items: Sequence[str] = (), guards: str = "") -> str:
    """The prompt for a maintenance pass: directive, steering, guards, the repo's memory and backlog."""
    doc_order = [memory.MEMORY, memory.INCIDENTS, memory.BACKLOG]
    if include_agents_md:
        doc_order.insert(0, memory.AGENTS)
    parts = [
        texts.core.strip(),
        texts.steering.strip(),
        "## This pass",
        f"- Repository: {repo_name}\n"
        "- Pass kind: pass (a maintenance pass)\n"
        f"- Work on at most {tasks_per_repo} backlog item(s) (TASKS_PER_REPO), highest impact first.\n"
        "- Your working directory is a private work tree; the orchestrator commits and pushes what you leave.",
        *([guards.strip()] if guards else []),
        "## Highest-priority open backlog items\n\n" + (
            "\n".join(f"{i}. {item}" for i, item in enumerate(top_items, 1)) if top_items
            else "(the backlog has no open items: audit the repo and add well-formed items first)"),
        "## The repository's memory and backlog (as they are now)",
        *(_doc_section(doc, docs.get(doc, "")) for doc in doc_order),
    ]
    return "\n\n".join(parts).rstrip() + "\n"


def build_autofix_prompt(texts: PromptTexts, *, repo_name: str, sha: str, attempt: int,
                         max_attempts: int, failure_report: str, docs: Mapping[str, str],
                         include_agents_md: bool) -> str:
    """The prompt for a CI autofix: directive, steering, the failing jobs' log tails, and the memory."""
    doc_order = [memory.MEMORY, memory.INCIDENTS]
    if include_agents_md:
        doc_order.insert(0, memory.AGENTS)
    parts = [
        texts.core.strip(),
        texts.steering.strip(),
        "## This pass: CI autofix",
        f"- Repository: {repo_name}\n"
        "- Pass kind: autofix\n"
        f"- CI failed for commit {sha} that the orchestrator pushed. Attempt {attempt} of {max_attempts}.\n"
        "- Fix the root cause of the failure below and nothing else. Do not delete or skip tests, and do "
        "not edit CI workflow files to make it pass.",
        "## Failing CI jobs (log tails)",
        failure_report.strip() or "(no log lines were available)",
        "## The repository's memory (as it is now)",
        *(_doc_section(doc, docs.get(doc, "")) for doc in doc_order),
    ]
    return "\n\n".join(parts).rstrip() + "\n"


def build_verify_fix_prompt(texts: PromptTexts, *, repo_name: str, evidence: str) -> str:
    """One bounded chance to fix the repo's own checks that failed after the agent's changes (directive and
    steering first, as in every prompt)."""
    parts = [
        texts.core.strip(),
        texts.steering.strip(),
        "## This pass: make the repository's checks pass",
        f"- Repository: {repo_name}\n"
        "- Your changes in this work tree made the repository's own checks fail (output below). Fix your "
        "change so they pass. Do not delete or skip tests and do not weaken the checks. This is your only "
        "chance: if they still fail, nothing is pushed.",
        "## Failing checks",
        evidence.strip(),
    ]
    return "\n\n".join(parts).rstrip() + "\n"


def build_incubator_prompt(core: str, template: str, idea: Any, repo_name: str) -> str:
    """The bootstrap prompt: the core directive, then the incubator template filled in from the idea
    (a :class:`clone.ideas.ideas_file.Idea`: its id, title and summary)."""
    values = {"repo_name": repo_name, "idea_id": idea.id, "title": idea.title or "(no title)",
              "summary": clip(idea.summary, 8000) if idea.summary
              else "(no summary; go by the title)"}
    # Only the known placeholders are replaced, so the template may hold other braces.
    body = re.sub(r"\{(repo_name|idea_id|title|summary)\}", lambda m: values[m.group(1)], template)
    return core.strip() + "\n\n" + body.strip() + "\n"
