"""Agent output parsers against anything an agent might print: property-based (hypothesis) over
the codex, claude and command parsers, and hostile event streams through the real runner."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clone.agents.base import AgentResult, AgentRun
from clone.agents.claude import ClaudeAgent, ClaudeEvents
from clone.agents.codex import CodexEvents
from clone.agents.command import CommandAgent
from clone.errors import AgentError

SCRIPTED_AGENT = Path(__file__).parents[1] / "scripted_agent.py"

# Any JSON value, a few levels deep.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
CODEX_TYPES = ["turn.completed", "turn.failed", "error", "item.started", "item.completed", "thread.started"]
CLAUDE_TYPES = ["system", "assistant", "user", "result", "stream_event"]
FIELDS = ["type", "error", "message", "item", "usage", "text", "changes", "exit_code", "content", "subtype",
          "tools", "result", "is_error", "errors", "total_cost_usd", "num_turns", "duration_ms", "id", "input",
          "tool_use_id", "parent_tool_use_id", "tool_use_result", "is_api_error_message"]


def events(types: list[str]):
    """Event-shaped dicts: a known (or any) type, known field names holding any JSON, nested once."""
    field = st.sampled_from(FIELDS)
    nested = st.dictionaries(field, json_values | st.sampled_from(types + ["text", "tool_use", "tool_result"]),
                             max_size=6)
    values = json_values | nested | st.lists(nested, max_size=3)
    return st.builds(lambda kind, rest: {**rest, "type": kind},
                     st.sampled_from(types) | json_values, st.dictionaries(field, values, max_size=6))


lines = (
    st.one_of(events(CODEX_TYPES), events(CLAUDE_TYPES), json_values).map(json.dumps)
    | st.text(max_size=200)
    | st.binary(max_size=200).map(lambda raw: raw.decode("utf-8", errors="replace"))
    | st.sampled_from(["{", "[" * 5000 + "]" * 5000, '{"type": "turn.completed", "usage": {"input_tokens": 1e999}}',
                       '{"type": "result", "total_cost_usd": NaN}', '{"type": "result", "total_cost_usd": Infinity}'])
)
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(st.lists(lines, max_size=8))
def test_codex_events_digest_any_stream(stream):
    events = CodexEvents()
    for line in stream:
        assert isinstance(events.feed(line), str)
    assert isinstance(events.total_tokens, int)
    result = AgentResult(agent="codex", ok=True, exit_code=0, duration=0)
    events.apply(result)
    assert result.ok is not bool(events.failures)


@PROPERTY
@given(st.lists(lines, max_size=8), st.booleans())
def test_claude_events_digest_any_stream(stream, exited_ok):
    events = ClaudeEvents()
    for line in stream:
        rendered = events.feed(line)
        assert isinstance(rendered, list) and all(isinstance(r, str) for r in rendered)
    assert isinstance(events.total_tokens, int)
    assert isinstance(events.last_message, str)
    assert all(isinstance(f, str) for f in events.failures(exited_ok))


@PROPERTY
@given(st.lists(lines, max_size=8))
def test_command_agent_reads_any_output(stream):
    agent = CommandAgent("true", timeout_seconds=10, max_tokens=100)
    for line in stream:
        assert isinstance(agent._handle_line("stdout", line), bool)
        assert agent._handle_line("stderr", line) in (True, False)


def test_a_string_error_in_turn_failed_fails_the_pass_with_its_text():
    events = CodexEvents()
    events.feed('{"type":"turn.failed","error":"boom"}')
    events.feed('{"type":"error","message":{"nested":"oops"}}')
    events.feed('{"type":"item.completed","item":"not an item"}')
    assert events.failures == ["turn failed: boom", 'error: {"type": "error", "message": {"nested": "oops"}}']


HOSTILE = ['{"type":"item.completed","item":["a","list"]}', '{"type":"assistant","message":"a string"}',
           '{"type":"turn.completed","usage":"lots"}', "[1, 2, 3]", '"just a string"', "{not json",
           '{"type":"turn.failed","error":"boom"}']


def test_hostile_events_through_the_real_runner_end_at_once_with_a_clear_message(tmp_path, monkeypatch):
    plan = tmp_path / "plan.json"
    # Hostile events, then output enough to fill any pipe: a dead reader would leave the agent blocked.
    plan.write_text(json.dumps({"*": {"pass": [*({"print": line} for line in HOSTILE),
                                               *({"print": "x" * 1000} for _ in range(200)),
                                               {"exit": 0}]}}))
    monkeypatch.setenv("SCRIPTED_AGENT_PLAN", str(plan))
    agent = CommandAgent(f"{sys.executable} {SCRIPTED_AGENT}", timeout_seconds=120,
                         passthrough=("SCRIPTED_AGENT_PLAN",))
    started = time.monotonic()
    with pytest.raises(AgentError) as info:
        agent.run(AgentRun(workdir=tmp_path, prompt="p", repo_name="svc"))
    assert time.monotonic() - started < 20
    assert "turn failed: boom" in str(info.value) and not info.value.result.timed_out


def test_hostile_claude_stream_through_the_real_runner(tmp_path):
    stream = tmp_path / "stream.jsonl"
    stream.write_bytes("\n".join([*HOSTILE, '{"type":"user","message":{"content":"text"}}',
                                  '{"type":"system","subtype":"init","tools":7}']).encode() + b"\n\xff\xfe\n"
                      + b'{"type":"result","subtype":"success","result":"done","usage":{"input_tokens":3}}\n')
    exe = tmp_path / "claude"
    exe.write_text(f"#!{sys.executable}\nimport sys\nsys.stdin.read()\n"
                   f"sys.stdout.buffer.write(open({str(stream)!r}, 'rb').read())\n")
    exe.chmod(0o755)
    started = time.monotonic()
    result = ClaudeAgent(executable=str(exe), timeout_seconds=120).run(
        AgentRun(workdir=tmp_path, prompt="p", repo_name="svc"))
    assert time.monotonic() - started < 20
    assert result.ok and result.last_message == "done" and result.usage["input_tokens"] == 3
