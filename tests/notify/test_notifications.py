"""Notifications through the real notifiers (the SMTP provider's SmtpNotifier, the Slack provider's
SlackWebhookNotifier) to a local SMTP server and a local webhook, with the rate limiter's digests."""

from __future__ import annotations

import json

import pytest

from clone.notify import digest
from clone.notify.events import Event, fleet_events, idea_events
from clone.notify.send import deliver, load_notify_settings
from clone.errors import ConfigError
from tests.fakes.notify_sinks import SmtpSink, WebhookSink

RECORD = {"repos": [
    {"repo": "alpha", "map_index": 0, "outcome": "pushed", "ci": "success", "incidents": []},
    {"repo": "beta", "map_index": 1, "outcome": "autofixed", "ci": "success", "autofix": 1,
     "incidents": ["guard: restored .github/workflows/ci.yml"]},
    {"repo": "delta", "map_index": 2, "outcome": "failed", "failed_step": "agent_pass", "incidents": ["x"]},
    {"repo": "eps", "map_index": 3, "outcome": "skipped", "skip_kind": "stall", "skip_reason": "stalled: 3 passes"},
    {"repo": "zeta", "map_index": 4, "outcome": "skipped", "skip_kind": "lease", "skip_reason": "another pass"},
    {"repo": "eta", "map_index": 5, "outcome": "skipped", "skip_kind": "budget", "skip_reason": "budget spent"},
], "budget_tokens": 1000}
BASE = "http://airflow.example:8080"


def test_events_name_repo_reason_and_links_and_a_healthy_run_has_none():
    previous = {"repos": [{"repo": "zeta", "skip_kind": "lease"}]}
    events = fleet_events(RECORD, previous, dag_id="clone_fleet", run_id="r1", base_url=BASE)
    assert [(e.kind, e.repo) for e in events] == [
        ("incident", "beta"), ("chain failed", "delta"), ("stalled", "eps"), ("skipped repeatedly", "zeta"),
        ("budget reached", "eta")]
    failed = events[1]
    assert failed.reason == "agent_pass failed"
    assert dict(failed.links) == {"run": f"{BASE}/dags/clone_fleet/runs/r1",
                                  "log": f"{BASE}/dags/clone_fleet/runs/r1/tasks/repo.agent_pass/mapped/2"}
    healthy = {"repos": RECORD["repos"][:1]}
    assert fleet_events(healthy, None, dag_id="clone_fleet", run_id="r2", base_url=BASE) == []
    assert fleet_events(RECORD, None, dag_id="d", run_id="r", base_url=BASE)[3].kind == "budget reached"
    ideas = idea_events([{"id": "i1", "status": "BLOCKED", "last_error": "gh 422"}, {"id": "i2", "status": "ACTIVE"}],
                        dag_id="clone_ideas", run_id="r", base_url=BASE)
    assert [(e.kind, e.repo, e.reason) for e in ideas] == [("idea blocked", "i1", "gh 422")]


def test_digest_rate_limits_and_never_repeats_an_event_within_the_window():
    limits = {"max_per_window": 3, "window_seconds": 3600, "repeat_seconds": 86400}
    two = [Event("chain failed", "a", "x"), Event("stalled", "b", "y")]
    messages, state = digest.plan(two, {}, 1000.0, **limits)
    assert [m.subject for m in messages] == ["[clone] chain failed: a", "[clone] stalled: b"]
    again, state = digest.plan(two, state, 1100.0, **limits)  # the same events: nothing new
    assert again == []
    flood = [Event("chain failed", f"r{i}", "x") for i in range(10)]
    messages, state = digest.plan(flood, state, 1200.0, **limits)  # 1 slot left: one digest for all ten
    assert len(messages) == 1 and messages[0].is_digest and "10 events: 10 chain failed" in messages[0].body
    assert all(f"chain failed: r{i}" in messages[0].body for i in range(10))
    held, state = digest.plan([Event("incident", "z", "q")], state, 1300.0, **limits)  # no slot: it waits
    assert held == [] and len(state["held"]) == 1
    later, state = digest.plan([], state, 1000.0 + 3601, **limits)  # the window moved on: the digest goes
    assert len(later) == 1 and later[0].is_digest and "incident: z" in later[0].body and state["held"] == []
    failed = digest.unsent(state, later)  # a message no channel took is held again
    assert len(failed["held"]) == 1 and "incident|z|q" not in failed["seen"]


def test_settings_are_validated():
    assert not load_notify_settings({}).enabled
    with pytest.raises(ConfigError, match="CLONE_NOTIFY_TO"):
        load_notify_settings({"CLONE_NOTIFY_SMTP_CONN_ID": "smtp_default"})
    with pytest.raises(ConfigError, match="CLONE_NOTIFY_MAX_PER_WINDOW"):
        load_notify_settings({"CLONE_NOTIFY_MAX_PER_WINDOW": "lots"})
    s = load_notify_settings({"CLONE_NOTIFY_SLACK_CONN_ID": "hook", "CLONE_NOTIFY_TO": "a@x, b@x"})
    assert s.enabled and s.to == ("a@x", "b@x") and s.max_per_window == 5 and s.window_minutes == 60


def test_messages_reach_a_real_smtp_server_and_webhook_through_airflows_notifiers(monkeypatch):
    with SmtpSink() as smtp, WebhookSink() as hook:
        monkeypatch.setenv("AIRFLOW_CONN_CLONE_SMTP", json.dumps({
            "conn_type": "smtp", "host": "127.0.0.1", "port": smtp.port,
            "extra": {"disable_ssl": True, "disable_tls": True}}))
        monkeypatch.setenv("AIRFLOW_CONN_CLONE_HOOK", json.dumps({"conn_type": "slackwebhook", "password": hook.url}))
        settings = load_notify_settings({"CLONE_NOTIFY_SMTP_CONN_ID": "clone_smtp", "CLONE_NOTIFY_TO": "ops@x.test",
                                         "CLONE_NOTIFY_SLACK_CONN_ID": "clone_hook", "CLONE_NOTIFY_MAX_PER_WINDOW": "2"})
        events = fleet_events(RECORD, None, dag_id="clone_fleet", run_id="r1", base_url=BASE)
        limits = {"max_per_window": 2, "window_seconds": 3600, "repeat_seconds": 86400}
        messages, state = digest.plan(events[:2], {}, 0.0, **limits)
        assert deliver(messages, settings, {}) == []
        messages, state = digest.plan(events[2:], state, 10.0, **limits)  # window full: nothing goes out
        assert messages == [] and len(state["held"]) == 2
        messages, state = digest.plan([], state, 3700.0, **limits)
        assert deliver(messages, settings, {}) == []
        slack_only = load_notify_settings({"CLONE_NOTIFY_SLACK_CONN_ID": "clone_hook"})
        assert deliver([digest.single(Event("stalled", "s", "r"))], slack_only, {}) == []  # the webhook took it
        # A reason quoting Jinja reaches the reader as written (the notifiers do not render it).
        assert deliver([digest.single(Event("incident", "q", "agent said {{ 7*7 }}"))], settings, {}) == []
    subjects = smtp.subjects()
    assert subjects[:2] == ["[clone] incident: beta", "[clone] chain failed: delta"]
    assert subjects[2].startswith("[clone] digest: ") and subjects[3] == "[clone] incident: q"
    assert f"{BASE}/dags/clone_fleet/runs/r1/tasks/repo.agent_pass/mapped/2" in smtp.bodies()[1]
    assert "{{ 7*7 }}" in smtp.bodies()[3]
    texts = hook.texts()
    assert len(texts) == 5 and texts[1].startswith("*[clone] chain failed: delta*") and "{{ 7*7 }}" in texts[4]
    assert all(p["path"] == "/services/T000/B000/hook" for p in hook.posts)
