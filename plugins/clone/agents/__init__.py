"""Coding agents Clone can drive: ``codex`` (default), ``claude`` and ``command``: how each CLI is
started (in the sandbox), what its output events mean (codex.py, claude_events.py, events.py) and the
tokens it spent. May import ``clone.config``, ``clone.checks`` (redaction), ``clone.util`` and ``clone.errors``.
"""

from __future__ import annotations

from clone.agents.base import Agent, AgentResult, AgentRun
from clone.agents.claude import ClaudeAgent
from clone.agents.codex import CodexAgent
from clone.agents.command import CommandAgent
from clone.config.settings import Settings

__all__ = ["Agent", "AgentResult", "AgentRun", "ClaudeAgent", "CodexAgent", "CommandAgent", "build_agent"]


def build_agent(settings: Settings) -> Agent:
    """The agent the settings ask for."""
    common = {
        "timeout_seconds": settings.agent_timeout_minutes * 60,
        "passthrough": settings.agent_env_passthrough,
        "max_tokens": settings.max_tokens_per_pass,
    }
    if settings.agent == "command":
        return CommandAgent(settings.agent_command, **common)
    if settings.agent == "claude":
        return ClaudeAgent(model=settings.model, **common)
    return CodexAgent(model=settings.model, sandbox=settings.codex_sandbox, **common)
