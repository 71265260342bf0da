"""Prompt assembly: what the agent is told, in order, within budget."""

from __future__ import annotations

import pytest

from clone.memory import docs as memory
from clone.memory import prompts
from clone.errors import ConfigError

TEXTS = prompts.PromptTexts(core="CORE DIRECTIVE", steering="STEERING RULES")
DOCS = {memory.AGENTS: "agents contract", memory.MEMORY: "## Decisions\n- use uv",
        memory.INCIDENTS: "## incident one", memory.BACKLOG: "- [ ] (P1) add tests"}


def test_pass_prompt_order_and_content():
    text = prompts.build_pass_prompt(TEXTS, repo_name="widget", tasks_per_repo=7, docs=DOCS,
                                     include_agents_md=False)
    order = [text.index(s) for s in ("CORE DIRECTIVE", "STEERING RULES", "Repository: widget",
                                     "### PROJECT_MEMORY.md", "### INCIDENTS.md", "### CLONE_FEATURES.md")]
    assert order == sorted(order)
    assert "at most 7 backlog item(s)" in text and "- use uv" in text and "(P1) add tests" in text
    assert "### AGENTS.md" not in text  # codex reads AGENTS.md itself
    with_agents = prompts.build_pass_prompt(TEXTS, repo_name="w", tasks_per_repo=1, docs=DOCS,
                                            include_agents_md=True)
    assert "### AGENTS.md\n\nagents contract" in with_agents


def test_empty_docs_say_so():
    text = prompts.build_pass_prompt(TEXTS, repo_name="w", tasks_per_repo=1, docs={}, include_agents_md=False)
    assert "### PROJECT_MEMORY.md\n\n(empty)" in text


def test_large_memory_is_clipped_keeping_head_and_tail():
    big = "\n".join(f"line {i}" for i in range(20_000))
    text = prompts.build_pass_prompt(TEXTS, repo_name="w", tasks_per_repo=1,
                                     docs={memory.MEMORY: big, memory.INCIDENTS: big}, include_agents_md=False)
    assert len(text) < 60_000
    assert "line 0\n" in text and "line 19999" in text and "earlier lines not shown" in text


def test_autofix_prompt_carries_the_failure():
    text = prompts.build_autofix_prompt(TEXTS, repo_name="w", sha="abc123", attempt=2, max_attempts=3,
                                        failure_report="E   AssertionError: boom", docs=DOCS,
                                        include_agents_md=False)
    assert "Pass kind: autofix" in text and "abc123" in text and "Attempt 2 of 3" in text
    # Steering reaches every prompt (one agent session for every step): directive, steering, then the failure.
    order = [text.index(s) for s in ("CORE DIRECTIVE", "STEERING RULES", "Pass kind: autofix",
                                     "E   AssertionError: boom", "### PROJECT_MEMORY.md")]
    assert order == sorted(order)
    assert text.count("STEERING RULES") == 1


def test_prompt_files_errors_name_the_knob(tmp_path):
    core = tmp_path / "core.md"
    core.write_text("core")
    empty = tmp_path / "empty.md"
    empty.write_text("  \n")
    with pytest.raises(ConfigError, match="PROMPTS_FILE=.*is empty"):
        prompts.load_texts(core, empty)
    with pytest.raises(ConfigError, match="CORE_PROMPT_FILE=.*cannot read"):
        prompts.load_texts(tmp_path / "nope.md", core)


def test_shipped_prompts_and_templates_render():
    from clone.config.settings import PROMPTS_DIR

    texts = prompts.load_texts(PROMPTS_DIR / "autonomous_core_prompt.md", PROMPTS_DIR / "repo_steering.md")
    assert len(texts.core) > 1000 and len(texts.steering) > 500
    for doc in memory.DOCS:
        rendered = memory.render_template(doc, "widget")
        assert "widget" in rendered and "{repo_name}" not in rendered
    agents = memory.render_template(memory.AGENTS, "w")
    assert agents.count("<!-- clone:core-policy:begin -->") == 1
    assert agents.count("<!-- clone:core-policy:end -->") == 1
