"""The ``claude`` agent: stream-json parsing on recorded output, and the real Claude Code CLI end to end.

The recorded lines below are real ``claude -p --output-format stream-json --verbose`` output of Claude Code
2.1.331 against ``tests/fakes/anthropic_server.py`` (the ``system/init`` line trimmed to a few fields, the
``result`` line without its per-model breakdown). The ``slow`` tests install that CLI from the npm registry
on first use (about 400 MB, cached under ``.cache/test-tools`` or ``$CLONE_TEST_CACHE``) and run it for real
through ``ClaudeAgent.run`` against the fake Messages API.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

import pytest

from clone.agents.base import AgentResult, AgentRun
from clone.agents.claude import ClaudeAgent, ClaudeEvents
from clone.errors import AgentError, ConfigError
from tests.fakes.anthropic_server import BashCall, FakeAnthropicServer, HttpError, Text, Usage
from tests.fakes.claude_cli import claude_env, install_claude
from tests.repos import git, log_subjects, make_remote_and_checkout

# Claude Code 2.1.331: Bash writes a file, a command exits 3, `git push` is denied, final message.
# The fake reported Usage(1200, 345, 10, 20) for each of the 4 model requests; model claude-sonnet-4-5.
SUCCESS_STREAM = r"""
{"type":"system","subtype":"init","cwd":"/tmp/repo","session_id":"9bdef38a-7c71-4948-b6f6-51ae4519a289","tools":["Task","Bash","CronCreate","CronDelete","CronList","Edit"],"model":"claude-sonnet-4-5","permissionMode":"acceptEdits","apiKeySource":"ANTHROPIC_API_KEY","claude_code_version":"2.1.331"}
{"type":"assistant","message":{"id":"msg_0002","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"tool_use","id":"toolu_0001","name":"Bash","input":{"command":"printf 'made by claude\\n' > CLAUDE_WAS_HERE.txt","description":"Run a scripted command"}}],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":1200,"cache_creation_input_tokens":10,"cache_read_input_tokens":20,"output_tokens":1},"context_management":null},"parent_tool_use_id":null,"session_id":"9bdef38a-7c71-4948-b6f6-51ae4519a289","uuid":"07f70dff-d7da-4dc7-9400-bb86ed996a1c","timestamp":"2026-11-24T22:16:54.990Z","request_id":"req_0003"}
{"type":"user","message":{"role":"user","content":[{"tool_use_id":"toolu_0001","type":"tool_result","content":"(Bash completed with no output)","is_error":false}]},"parent_tool_use_id":null,"session_id":"9bdef38a-7c71-4948-b6f6-51ae4519a289","uuid":"5143d544-a2cd-494f-a7e5-bea169162fcd","timestamp":"2026-11-24T22:16:55.087Z","tool_use_result":{"stdout":"","stderr":"","interrupted":false,"isImage":false,"noOutputExpected":false},"tool_result_meta":[{"id":"toolu_0001","permission_decision":{"decision":"accept","source":"config","reason_type":"rule"}}]}
{"type":"assistant","message":{"id":"msg_0005","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"tool_use","id":"toolu_0004","name":"Bash","input":{"command":"python3 -c 'import sys; sys.exit(3)'","description":"Run a scripted command"}}],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":1200,"cache_creation_input_tokens":10,"cache_read_input_tokens":20,"output_tokens":1},"context_management":null},"parent_tool_use_id":null,"session_id":"9bdef38a-7c71-4948-b6f6-51ae4519a289","uuid":"f9d97c93-a1b4-46f5-9c4a-9250a06ff658","timestamp":"2026-11-24T22:16:55.112Z","request_id":"req_0006"}
{"type":"user","message":{"role":"user","content":[{"type":"tool_result","content":"Exit code 3","is_error":true,"tool_use_id":"toolu_0004"}]},"parent_tool_use_id":null,"session_id":"9bdef38a-7c71-4948-b6f6-51ae4519a289","uuid":"dddbeaf0-f841-46bc-838c-f2b9abee5227","timestamp":"2026-11-24T22:16:55.261Z","tool_use_result":"Error: Exit code 3","tool_result_meta":[{"id":"toolu_0004","permission_decision":{"decision":"accept","source":"config","reason_type":"rule"}}]}
{"type":"assistant","message":{"id":"msg_0008","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"tool_use","id":"toolu_0007","name":"Bash","input":{"command":"git push origin main","description":"Run a scripted command"}}],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":1200,"cache_creation_input_tokens":10,"cache_read_input_tokens":20,"output_tokens":1},"context_management":null},"parent_tool_use_id":null,"session_id":"9bdef38a-7c71-4948-b6f6-51ae4519a289","uuid":"9bf80b71-d497-4347-9a39-2dd6ad4e807f","timestamp":"2026-11-24T22:16:55.280Z","request_id":"req_0009"}
{"type":"system","subtype":"permission_denied","tool_name":"Bash","tool_use_id":"toolu_0007","decision_reason_type":"subcommandResults","message":"Permission to use Bash with command git push origin main has been denied.","uuid":"a667d880-2528-4014-a94c-75ad5c644c3c","session_id":"9bdef38a-7c71-4948-b6f6-51ae4519a289"}
{"type":"user","message":{"role":"user","content":[{"type":"tool_result","content":"Permission to use Bash with command git push origin main has been denied.","is_error":true,"tool_use_id":"toolu_0007"}]},"parent_tool_use_id":null,"session_id":"9bdef38a-7c71-4948-b6f6-51ae4519a289","uuid":"6cbed244-59cf-484a-87bd-67ba680df06e","timestamp":"2026-11-24T22:16:55.287Z","tool_use_result":"Error: Permission to use Bash with command git push origin main has been denied.","tool_result_meta":[{"id":"toolu_0007","non_execution_kind":"permission-rule","permission_decision":{"decision":"reject","source":"config","reason_type":"subcommandResults"}}]}
{"type":"assistant","message":{"id":"msg_0010","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"Outcome: done\nChanged: added CLAUDE_WAS_HERE.txt"}],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":1200,"cache_creation_input_tokens":10,"cache_read_input_tokens":20,"output_tokens":1},"context_management":null},"parent_tool_use_id":null,"session_id":"9bdef38a-7c71-4948-b6f6-51ae4519a289","uuid":"c6ed8c2a-c444-424b-81a7-4e9625ba29b9","timestamp":"2026-11-24T22:16:55.348Z","request_id":"req_0011"}
{"duration_api_ms":187,"stop_reason":"end_turn","session_id":"9bdef38a-7c71-4948-b6f6-51ae4519a289","total_cost_usd":0.035274,"usage":{"input_tokens":4800,"cache_creation_input_tokens":40,"cache_read_input_tokens":80,"output_tokens":1380,"output_tokens_details":{"thinking_tokens":0},"server_tool_use":{"web_search_requests":0,"web_fetch_requests":0},"service_tier":"standard","cache_creation":{"ephemeral_1h_input_tokens":0,"ephemeral_5m_input_tokens":0},"inference_geo":"","iterations":[],"speed":"standard","fallback_credit":null},"permission_denials":[{"tool_name":"Bash","tool_use_id":"toolu_0007","tool_input":{"command":"git push origin main","description":"Run a scripted command"}}],"terminal_reason":"completed","fast_mode_state":"off","fast_mode_disabled_reason":"sdk_opt_in_required","safety_stops":0,"is_error":false,"num_turns":4,"subtype":"success","api_error_status":null,"result":"Outcome: done\nChanged: added CLAUDE_WAS_HERE.txt","ttft_ms":137,"type":"result","duration_ms":500,"uuid":"648b812e-07e2-4b38-a664-e9564268caa0","ttft_stream_ms":135,"time_to_request_ms":116,"first_content_frame_ms":136,"queued_turn_count":0,"result_index":0}
"""

# The fake answered every request with HTTP 400 invalid_request_error "model backend exploded". Exit code 1.
API_ERROR_STREAM = r"""
{"type":"system","subtype":"init","cwd":"/tmp/repo","session_id":"0948b073-461a-4c41-b130-77cd23b05fca","tools":["Task","Bash","CronCreate","CronDelete","CronList","Edit"],"model":"claude-sonnet-4-5","permissionMode":"acceptEdits","apiKeySource":"ANTHROPIC_API_KEY","claude_code_version":"2.1.331"}
{"type":"assistant","message":{"diagnostics":null,"id":"951f00a1-ed20-444a-8e06-97025176eff3","container":null,"model":"<synthetic>","role":"assistant","stop_details":null,"stop_reason":"stop_sequence","stop_sequence":"","type":"message","usage":{"output_tokens_details":null,"input_tokens":0,"output_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"server_tool_use":{"web_search_requests":0,"web_fetch_requests":0},"service_tier":null,"cache_creation":{"ephemeral_1h_input_tokens":0,"ephemeral_5m_input_tokens":0},"inference_geo":null,"iterations":null,"speed":null,"fallback_credit":null},"content":[{"type":"text","text":"API Error: 400 model backend exploded"}],"context_management":null},"parent_tool_use_id":null,"session_id":"0948b073-461a-4c41-b130-77cd23b05fca","uuid":"be3ef3a2-de01-4647-988e-02bc64db6bca","timestamp":"2026-11-24T22:16:56.180Z","error":"unknown","is_api_error_message":true,"api_error_status":400,"api_error_type":"invalid_request_error"}
{"duration_api_ms":0,"stop_reason":"stop_sequence","session_id":"0948b073-461a-4c41-b130-77cd23b05fca","total_cost_usd":0,"usage":{"output_tokens_details":{"thinking_tokens":0},"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0,"server_tool_use":{"web_search_requests":0,"web_fetch_requests":0},"service_tier":"standard","cache_creation":{"ephemeral_1h_input_tokens":0,"ephemeral_5m_input_tokens":0},"inference_geo":"","iterations":[],"speed":"standard","fallback_credit":null},"permission_denials":[],"terminal_reason":"api_error","fast_mode_state":"off","fast_mode_disabled_reason":"sdk_opt_in_required","safety_stops":0,"is_error":true,"num_turns":1,"subtype":"success","api_error_status":400,"api_error_type":"invalid_request_error","result":"API Error: 400 model backend exploded","type":"result","duration_ms":399,"uuid":"13149b8a-6c36-48ca-8074-46a2ac963295","queued_turn_count":0,"result_index":0}
"""

# --max-turns 1 with a script of two Bash calls: the run stops after the first tool result. Exit code 1.
MAX_TURNS_STREAM = r"""
{"type":"system","subtype":"init","cwd":"/tmp/repo","session_id":"1048cc84-678b-47c5-9e7b-4816abe011b8","tools":["Task","Bash","CronCreate","CronDelete","CronList","Edit"],"model":"claude-sonnet-4-5","permissionMode":"acceptEdits","apiKeySource":"ANTHROPIC_API_KEY","claude_code_version":"2.1.331"}
{"type":"assistant","message":{"id":"msg_0002","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"tool_use","id":"toolu_0001","name":"Bash","input":{"command":"echo a","description":"Run a scripted command"}}],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":1200,"cache_creation_input_tokens":10,"cache_read_input_tokens":20,"output_tokens":1},"context_management":null},"parent_tool_use_id":null,"session_id":"1048cc84-678b-47c5-9e7b-4816abe011b8","uuid":"80c20760-d9da-409d-a837-fbb60ee8db75","timestamp":"2026-11-24T22:16:57.009Z","request_id":"req_0003"}
{"type":"user","message":{"role":"user","content":[{"tool_use_id":"toolu_0001","type":"tool_result","content":"a","is_error":false}]},"parent_tool_use_id":null,"session_id":"1048cc84-678b-47c5-9e7b-4816abe011b8","uuid":"812a7871-b82e-421f-8b87-8ef13cc7d59a","timestamp":"2026-11-24T22:16:57.125Z","tool_use_result":{"stdout":"a","stderr":"","interrupted":false,"isImage":false,"noOutputExpected":false},"tool_result_meta":[{"id":"toolu_0001","permission_decision":{"decision":"accept","source":"config","reason_type":"rule"}}]}
{"duration_api_ms":103,"stop_reason":"tool_use","session_id":"1048cc84-678b-47c5-9e7b-4816abe011b8","total_cost_usd":0.0088185,"usage":{"input_tokens":1200,"cache_creation_input_tokens":10,"cache_read_input_tokens":20,"output_tokens":345,"output_tokens_details":{"thinking_tokens":0},"server_tool_use":{"web_search_requests":0,"web_fetch_requests":0},"service_tier":"standard","cache_creation":{"ephemeral_1h_input_tokens":0,"ephemeral_5m_input_tokens":0},"inference_geo":"","iterations":[],"speed":"standard","fallback_credit":null},"permission_denials":[],"terminal_reason":"max_turns","fast_mode_state":"off","fast_mode_disabled_reason":"sdk_opt_in_required","safety_stops":0,"is_error":true,"num_turns":2,"subtype":"error_max_turns","errors":["Reached maximum number of turns (1)"],"type":"result","duration_ms":407,"uuid":"32e2ce4c-6905-4485-a82e-72afc06ee5a0","queued_turn_count":0,"result_index":0}
"""

SONNET_45_PRICE_PER_MTOK = {"input_tokens": 3.0, "output_tokens": 15.0,
                            "cache_creation_input_tokens": 3.75, "cache_read_input_tokens": 0.30}


def lines(stream: str) -> list[str]:
    return [line for line in stream.strip().splitlines() if line.strip()]


def feed(agent: ClaudeAgent, stream: str) -> None:
    for line in lines(stream):
        agent.on_line("stdout", line)


def logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "clone.agent"]


def finished(agent: ClaudeAgent, exit_code: int = 0) -> AgentResult:
    result = AgentResult(agent="claude", ok=exit_code == 0, exit_code=exit_code, duration=1.0)
    if exit_code:
        result.error = f"exited with code {exit_code}: (raw tail)"
    agent.finish(result, Path("/nonexistent"))
    return result


# --------------------------------------------------------------------------------------------- argv


def test_argv_defaults_prompt_on_stdin(tmp_path: Path) -> None:
    agent = ClaudeAgent(timeout_seconds=60)
    run = AgentRun(workdir=tmp_path, prompt="Fix the tests\n" + "x" * 200_000, repo_name="svc")
    argv, stdin = agent.argv(run, tmp_path)
    assert argv == [
        "claude", "-p", "--output-format", "stream-json", "--verbose", "--no-session-persistence",
        "--permission-mode", "acceptEdits", "--allowedTools", "Bash", "--disallowedTools", "Bash(git push:*)",
        "--settings", '{"env":{"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC":"1"}}',
    ]
    assert stdin == run.prompt  # always on stdin, however long


def test_argv_options(tmp_path: Path) -> None:
    agent = ClaudeAgent(timeout_seconds=60, model="claude-sonnet-4-5", executable="/opt/claude",
                        permission_mode="dontAsk", allowed_tools=("Bash(pytest:*)", "Edit"),
                        disallowed_tools=(),
                        max_turns=40, max_budget_usd=2.5, disable_nonessential_traffic=False)
    argv, _ = agent.argv(AgentRun(workdir=tmp_path, prompt="p", repo_name="svc"), tmp_path)
    assert argv == [
        "/opt/claude", "-p", "--output-format", "stream-json", "--verbose", "--no-session-persistence",
        "--permission-mode", "dontAsk", "--allowedTools", "Bash(pytest:*),Edit",
        "--model", "claude-sonnet-4-5", "--max-turns", "40", "--max-budget-usd", "2.5",
    ]


def test_bad_permission_modes_are_config_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="permission mode must be one of"):
        ClaudeAgent(timeout_seconds=60, permission_mode="yolo")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    with pytest.raises(ConfigError, match="as root"):
        ClaudeAgent(timeout_seconds=60, permission_mode="bypassPermissions")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert ClaudeAgent(timeout_seconds=60, permission_mode="bypassPermissions").permission_mode == \
        "bypassPermissions"


# ---------------------------------------------------------------------------------------- recorded output


def test_recorded_success_usage_cost_last_message_and_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="clone.agent")
    agent = ClaudeAgent(timeout_seconds=60)
    agent.argv(AgentRun(workdir=Path("/tmp"), prompt="p", repo_name="svc"), Path("/tmp"))
    feed(agent, SUCCESS_STREAM)
    result = finished(agent)

    assert result.ok and result.error == ""
    assert result.usage == {"input_tokens": 4800, "output_tokens": 1380, "cache_creation_input_tokens": 40,
                            "cache_read_input_tokens": 80, "total_tokens": 6300, "cost_usd_micros": 35274}
    assert result.last_message == "Outcome: done\nChanged: added CLAUDE_WAS_HERE.txt"
    assert logged(caplog)[:-1] == [
        "[claude] session started: claude 2.1.331, model claude-sonnet-4-5, permission mode acceptEdits, "
        "6 tools, cwd /tmp/repo",
        "[claude] tool Bash: printf 'made by claude\\n' > CLAUDE_WAS_HERE.txt",
        "[claude] tool Bash -> exit 0 (printf 'made by claude\\n' > CLAUDE_WAS_HERE.txt)",
        "[claude] tool Bash: python3 -c 'import sys; sys.exit(3)'",
        "[claude] tool Bash -> exit 3 (python3 -c 'import sys; sys.exit(3)')",
        "[claude] tool Bash: git push origin main",
        "[claude] permission DENIED for Bash: Permission to use Bash with command git push origin main has "
        "been denied.",
        "[claude] tool Bash -> ERROR: Permission to use Bash with command git push origin main has been "
        "denied. (git push origin main)",
        "[claude] message: Outcome: done Changed: added CLAUDE_WAS_HERE.txt",
        "[claude] result success, 4 turns, 0.5s, cost $0.0353; input_tokens=4800, output_tokens=1380, "
        "cache_creation_input_tokens=40, cache_read_input_tokens=80",
    ]
    assert logged(caplog)[-1].startswith("agent claude: 1 tool call(s) denied by its permission settings")


def test_recorded_api_error_fails_even_with_exit_code_0() -> None:
    agent = ClaudeAgent(timeout_seconds=60)
    feed(agent, API_ERROR_STREAM)
    result = finished(agent, exit_code=0)
    assert not result.ok
    assert result.error == ("claude result success (terminal_reason=api_error, api_error_status=400): "
                            "API Error: 400 model backend exploded")
    assert result.usage == {"input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": 0,
                            "cache_read_input_tokens": 0, "total_tokens": 0, "cost_usd_micros": 0}

    agent = ClaudeAgent(timeout_seconds=60)
    feed(agent, API_ERROR_STREAM)
    result = finished(agent, exit_code=1)  # what 2.1.331 really does: the parsed reason replaces the raw tail
    assert not result.ok
    assert result.error.startswith("exited with code 1: claude result success (terminal_reason=api_error")


def test_recorded_max_turns_is_a_failure_with_usage() -> None:
    agent = ClaudeAgent(timeout_seconds=60)
    feed(agent, MAX_TURNS_STREAM)
    result = finished(agent, exit_code=1)
    assert not result.ok
    assert "claude result error_max_turns (terminal_reason=max_turns): Reached maximum number of turns (1)" \
        in result.error
    assert result.usage["input_tokens"] == 1200
    assert result.usage["cost_usd_micros"] == 8818  # round(0.0088185 $ * 1e6)


def test_no_result_event_is_a_failure_and_usage_comes_from_messages() -> None:
    agent = ClaudeAgent(timeout_seconds=60)
    before_result = [line for line in lines(SUCCESS_STREAM) if '"type":"result"' not in line]
    seen = []
    for line in before_result:
        agent.on_line("stdout", line)
        seen.append(agent.tokens_used())
    # The budget check sees tokens grow as messages arrive: 4 messages of 1200 + 10 + 20 + 1 (message_start).
    assert seen[-1] == 4 * (1200 + 10 + 20 + 1)
    assert sorted(set(seen)) == [0, 1231, 2462, 3693, 4924]
    result = finished(agent, exit_code=0)
    assert not result.ok and result.error == "claude exited without a result event"
    assert result.usage == {"input_tokens": 4800, "output_tokens": 4, "cache_creation_input_tokens": 40,
                            "cache_read_input_tokens": 80, "total_tokens": 4924}
    assert result.last_message == "Outcome: done\nChanged: added CLAUDE_WAS_HERE.txt"


def test_events_ignore_noise_and_render_other_tools() -> None:
    events = ClaudeEvents()
    assert events.feed("") == []
    assert events.feed("not json") == ["not json"]
    assert events.feed('{"type":"stream_event","event":{}}') == []
    assert events.feed('{"type":"rate_limit_event"}') == ["rate_limit_event"]
    assert events.feed('{"type":"system","subtype":"api_retry","attempt":1,"max_retries":3,'
                       '"retry_delay_ms":503,"error_status":500,"error":"server_error"}') == [
        "API retry 1/3 after 500 server_error, waiting 503 ms"]
    assert events.feed('{"type":"assistant","message":{"id":"m1","content":['
                       '{"type":"thinking","thinking":"hmm"},'
                       '{"type":"tool_use","id":"t1","name":"Edit","input":{"file_path":"/r/a.py"}}]}}') == [
        "thinking: hmm", "tool Edit: /r/a.py"]
    assert events.feed('{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"t1",'
                       '"content":[{"type":"text","text":"updated"}]}]}}') == ["tool Edit -> ok"]
    assert events.feed('{"type":"assistant","parent_tool_use_id":"t9","message":{"id":"m2","content":['
                       '{"type":"text","text":"sub"}]}}') == ["[subagent] message: sub"]
    assert events.last_message == ""  # a subagent's text is not the run's last message
    assert events.failures(exited_ok=False) == []


# ------------------------------------------------------------------------------------ Agent.run, replayed


def replaying_claude(tmp_path: Path, stream: str, exit_code: int = 0) -> Path:
    """A stand-in for claude: saves its argv and stdin, prints ``stream``, exits ``exit_code``."""
    (tmp_path / "stream.jsonl").write_text("\n".join(lines(stream)) + "\n")
    exe = tmp_path / "claude"
    exe.write_text(
        f"#!{sys.executable}\n"
        "import json, pathlib, sys\n"
        f"here = pathlib.Path({str(tmp_path)!r})\n"
        "(here / 'argv.json').write_text(json.dumps(sys.argv[1:]))\n"
        "(here / 'stdin.txt').write_text(sys.stdin.read())\n"
        "sys.stdout.write((here / 'stream.jsonl').read_text())\n"
        f"sys.exit({exit_code})\n"
    )
    exe.chmod(0o755)
    return exe


def test_run_with_replayed_success(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="clone.agent")
    exe = replaying_claude(tmp_path, SUCCESS_STREAM)
    agent = ClaudeAgent(executable=str(exe), timeout_seconds=60)
    result = agent.run(AgentRun(workdir=tmp_path, prompt="Do the thing", repo_name="svc"))
    assert result.ok and result.usage["cost_usd_micros"] == 35274
    assert (tmp_path / "stdin.txt").read_text() == "Do the thing"
    assert "agent claude token usage: cache_creation_input_tokens=40, cache_read_input_tokens=80, " \
           "cost_usd_micros=35274, input_tokens=4800, output_tokens=1380, total_tokens=6300" in logged(caplog)


@pytest.mark.parametrize("stream, exit_code, expected", [
    (API_ERROR_STREAM, 0, "API Error: 400 model backend exploded"),
    (API_ERROR_STREAM, 1, "exited with code 1: claude result success (terminal_reason=api_error"),
    (MAX_TURNS_STREAM, 1, "error_max_turns"),
    ("", 0, "claude exited without a result event"),
], ids=["api-error-exit-0", "api-error-exit-1", "max-turns", "no-result"])
def test_run_with_replayed_failures_raises(tmp_path: Path, stream: str, exit_code: int,
                                           expected: str) -> None:
    exe = replaying_claude(tmp_path, stream, exit_code)
    agent = ClaudeAgent(executable=str(exe), timeout_seconds=60)
    with pytest.raises(AgentError, match="agent claude failed on svc") as info:
        agent.run(AgentRun(workdir=tmp_path, prompt="p", repo_name="svc"))
    assert expected in info.value.result.error
    assert not info.value.result.ok


def test_run_over_token_budget_is_stopped(tmp_path: Path) -> None:
    exe = replaying_claude(tmp_path, SUCCESS_STREAM)
    agent = ClaudeAgent(executable=str(exe), timeout_seconds=60, max_tokens=2000)
    with pytest.raises(AgentError, match="token budget exceeded") as info:
        agent.run(AgentRun(workdir=tmp_path, prompt="p", repo_name="svc"))
    assert info.value.result.over_budget
    assert info.value.result.usage["total_tokens"] > 2000


# --------------------------------------------------------------------------------------------- the real CLI


@pytest.fixture(scope="module")
def claude_bin() -> Path:
    return install_claude()


@pytest.fixture
def claude_agent_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Point the agent's environment at a fake server: a temp HOME and config dir, offline settings."""

    def start(server: FakeAnthropicServer) -> tuple[str, ...]:
        home = tmp_path / "home"
        home.mkdir(exist_ok=True)
        monkeypatch.setenv("HOME", str(home))  # HOME is on the allowlist: never the developer's own
        env = claude_env(tmp_path / "claude-config", server.base_url)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return tuple(env)  # the passthrough names

    return start


def expected_cost_micros(usages: list[Usage]) -> float:
    return sum(getattr(u, key) * price for u in usages for key, price in SONNET_45_PRICE_PER_MTOK.items())


@pytest.mark.slow
def test_real_claude_runs_bash_and_reports_usage_and_cost(claude_bin, claude_agent_env, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="clone.agent")
    checkout, bare = make_remote_and_checkout(tmp_path, "svc", {"README.md": "# svc\n"})
    script = [
        BashCall("printf 'made by claude\\n' > CLAUDE_WAS_HERE.txt && cat CLAUDE_WAS_HERE.txt"),
        BashCall("git push origin HEAD:refs/heads/agent-push"),  # denied by the default --disallowedTools
        Text("Outcome: done\nChanged: added CLAUDE_WAS_HERE.txt", usage=Usage(2000, 50, 0, 1500)),
    ]
    with FakeAnthropicServer(script=script, usage=Usage(1200, 345, 10, 20)) as server:
        passthrough = claude_agent_env(server)
        agent = ClaudeAgent(executable=str(claude_bin), model="claude-sonnet-4-5", timeout_seconds=120,
                            passthrough=passthrough)
        started = time.monotonic()
        result = agent.run(AgentRun(workdir=checkout, prompt="Add CLAUDE_WAS_HERE.txt", repo_name="svc"))
        elapsed = time.monotonic() - started

    assert (checkout / "CLAUDE_WAS_HERE.txt").read_text() == "made by claude\n"
    assert git(bare, "branch", "--list", "agent-push") == ""  # the push never ran
    assert log_subjects(bare) == ["initial"]
    # The fake's assumptions about Claude Code hold: one request per step, the Bash tool, the prompt.
    assert len(server.requests) == 3 and not server.side_requests
    assert {path.split("?")[0] for _, path, _ in server.http_log} == {"/v1/messages"}  # nothing else
    tools = {t["name"]: t for t in server.advertised_tools()}
    assert tools["Bash"]["input_schema"]["required"] == ["command"]
    assert server.prompt().strip() == "Add CLAUDE_WAS_HERE.txt"
    first, denied = server.tool_results()
    assert not first.is_error and first.text == "made by claude", first
    assert denied.is_error and "denied" in denied.content
    # Usage and cost, from the result event: the sums of what the fake reported, at Sonnet 4.5 list price.
    reported = server.reported_usage
    assert result.ok and result.exit_code == 0
    assert result.usage["input_tokens"] == sum(u.input_tokens for u in reported) == 4400
    assert result.usage["output_tokens"] == sum(u.output_tokens for u in reported) == 740
    assert result.usage["cache_creation_input_tokens"] == 20
    assert result.usage["cache_read_input_tokens"] == 1540
    assert result.usage["total_tokens"] == 4400 + 740 + 20 + 1540
    assert abs(result.usage["cost_usd_micros"] - expected_cost_micros(reported)) <= 1
    assert result.last_message == "Outcome: done\nChanged: added CLAUDE_WAS_HERE.txt"
    # The events were rendered into the task log.
    log_lines = logged(caplog)
    assert any(m.startswith("[claude] session started: claude 2.1.331, model claude-sonnet-4-5, permission "
                            "mode acceptEdits") for m in log_lines)
    assert "[claude] tool Bash -> exit 0 (printf 'made by claude\\n' > CLAUDE_WAS_HERE.txt && cat " \
           "CLAUDE_WAS_HERE.txt)" in log_lines
    assert any(m.startswith("[claude] permission DENIED for Bash") for m in log_lines)
    assert "[claude] message: Outcome: done Changed: added CLAUDE_WAS_HERE.txt" in log_lines
    assert any(m.startswith("[claude] result success, 3 turns") for m in log_lines)
    assert any(m.startswith("agent claude token usage: ") and "cost_usd_micros=" in m for m in log_lines)
    assert elapsed < 60, f"took {elapsed:.1f} s"


@pytest.mark.slow
@pytest.mark.parametrize("failure", [
    HttpError(400, "model backend exploded", "invalid_request_error"),
    HttpError(500, "model backend exploded"),
], ids=["http-400", "http-500"])
def test_real_claude_api_errors_raise_agent_error(claude_bin, claude_agent_env, tmp_path, caplog, failure):
    caplog.set_level(logging.INFO, logger="clone.agent")
    checkout, _ = make_remote_and_checkout(tmp_path, "svc")
    with FakeAnthropicServer(script=[], when_exhausted=failure) as server:
        agent = ClaudeAgent(executable=str(claude_bin), timeout_seconds=120,
                            passthrough=claude_agent_env(server))
        started = time.monotonic()
        with pytest.raises(AgentError, match="agent claude failed on svc") as info:
            agent.run(AgentRun(workdir=checkout, prompt="Do something", repo_name="svc"))
        elapsed = time.monotonic() - started

    result = info.value.result
    assert result.exit_code == 1 and not result.ok
    assert f"API Error: {failure.status} model backend exploded" in result.error
    assert f"api_error_status={failure.status}" in result.error
    assert result.usage.get("cost_usd_micros") == 0
    # CLAUDE_CODE_MAX_RETRIES=0: a 500 is sent once; a 400 is re-sent 5 times with altered requests.
    assert len(server.requests) == (6 if failure.status == 400 else 1)
    assert any(m.startswith("[claude] API ERROR: API Error:") for m in logged(caplog))
    assert elapsed < 30, f"took {elapsed:.1f} s"
