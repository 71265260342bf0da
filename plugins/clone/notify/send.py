"""Send a run's events: settings from the environment, the rate limiter's state in the Airflow Variable
``clone_notify_state``, and the messages through Airflow's notifiers, the SMTP provider's
``SmtpNotifier`` and the Slack provider's ``SlackWebhookNotifier``, each set by a connection id.
Best effort: a channel that fails is logged and its events wait for the next message."""

from __future__ import annotations

import dataclasses
import html
import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from clone.errors import ConfigError
from clone.notify import digest
from clone.notify.events import Event

log = logging.getLogger(__name__)

STATE_VARIABLE = "clone_notify_state"


@dataclasses.dataclass(frozen=True)
class NotifySettings:
    """Where notifications go and how many: every field is a CLONE_NOTIFY_* knob (README "Notifications")."""

    smtp_conn_id: str | None = None
    slack_conn_id: str | None = None
    to: tuple[str, ...] = ()
    from_email: str = "clone@localhost"
    max_per_window: int = 5
    window_minutes: int = 60
    repeat_hours: int = 24

    @property
    def enabled(self) -> bool:
        return bool((self.smtp_conn_id and self.to) or self.slack_conn_id)


def load_notify_settings(env: Mapping[str, str] | None = None) -> NotifySettings:
    """The notification knobs from ``env`` (default ``os.environ``), validated."""
    env = os.environ if env is None else env
    from clone.config.settings import _Reader  # the one parser of environment knobs

    number = _Reader(env).integer
    smtp = (env.get("CLONE_NOTIFY_SMTP_CONN_ID") or "").strip() or None
    to = tuple(a.strip() for a in (env.get("CLONE_NOTIFY_TO") or "").split(",") if a.strip())
    if smtp and not to:
        raise ConfigError("CLONE_NOTIFY_SMTP_CONN_ID is set but CLONE_NOTIFY_TO is empty: name the address(es) "
                          "to mail, comma-separated")
    return NotifySettings(
        smtp_conn_id=smtp, slack_conn_id=(env.get("CLONE_NOTIFY_SLACK_CONN_ID") or "").strip() or None, to=to,
        from_email=(env.get("CLONE_NOTIFY_FROM") or "").strip() or NotifySettings.from_email,
        max_per_window=number("CLONE_NOTIFY_MAX_PER_WINDOW", NotifySettings.max_per_window, minimum=1),
        window_minutes=number("CLONE_NOTIFY_WINDOW_MINUTES", NotifySettings.window_minutes, minimum=1),
        repeat_hours=number("CLONE_NOTIFY_REPEAT_HOURS", NotifySettings.repeat_hours, minimum=0))


def notifiers(message: digest.Message, settings: NotifySettings) -> list[Any]:
    """The Airflow notifiers that carry ``message`` (one per configured channel)."""
    found: list[Any] = []
    if settings.smtp_conn_id and settings.to:
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        found.append(SmtpNotifier(to=list(settings.to), from_email=settings.from_email, subject=message.subject,
                                  html_content=f"<pre>{html.escape(message.body)}</pre>",
                                  smtp_conn_id=settings.smtp_conn_id))
    if settings.slack_conn_id:
        from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

        found.append(SlackWebhookNotifier(slack_webhook_conn_id=settings.slack_conn_id,
                                          text=f"*{message.subject}*\n{message.body}"))
    return found


def deliver(messages: Sequence[digest.Message], settings: NotifySettings,
            context: Mapping[str, Any]) -> list[digest.Message]:
    """Send each message on every channel; returns those no channel could send."""
    failed = []
    for message in messages:
        ok = False
        for notifier in notifiers(message, settings):
            try:
                # notify(), not __call__: __call__ renders the fields as Jinja templates, and a reason
                # quoting "{{" from an agent's output must reach the reader as written.
                notifier.notify(context)
                ok = True
            except Exception as e:  # noqa: BLE001 - one channel down must not stop the others or the run
                log.warning("notification %r via %s failed: %r", message.subject, type(notifier).__name__, e)
        if not ok:
            failed.append(message)
    return failed


def notify(events: Sequence[Event], context: Mapping[str, Any], *, settings: NotifySettings | None = None,
           now: float | None = None) -> list[digest.Message]:
    """Rate-limit ``events`` against the stored state, send what is due, keep the state; returns what was
    sent. Nothing is sent (or stored) when no channel is configured."""
    from airflow.sdk import Variable

    settings = settings or load_notify_settings()
    if not settings.enabled:
        if events:
            log.info("%d event(s) to notify, but no channel is set (CLONE_NOTIFY_SMTP_CONN_ID + CLONE_NOTIFY_TO, "
                     "or CLONE_NOTIFY_SLACK_CONN_ID)", len(events))
        return []
    try:
        state = json.loads(Variable.get(STATE_VARIABLE, default="{}") or "{}")
    except ValueError:
        log.warning("the Variable %s is not JSON; starting the rate limiter afresh", STATE_VARIABLE)
        state = {}
    messages, new_state = digest.plan(events, state if isinstance(state, dict) else {},
                                      time.time() if now is None else now,
                                      max_per_window=settings.max_per_window,
                                      window_seconds=settings.window_minutes * 60,
                                      repeat_seconds=settings.repeat_hours * 3600)
    failed = deliver(messages, settings, context)
    new_state = digest.unsent(new_state, failed)
    Variable.set(STATE_VARIABLE, json.dumps(new_state))
    sent = [m for m in messages if m not in failed]
    for message in sent:
        log.info("notified: %s", message.subject)
    held = len(new_state.get("held") or ())
    if held:
        log.info("%d event(s) wait for the next message (CLONE_NOTIFY_MAX_PER_WINDOW=%d per %d min)", held,
                 settings.max_per_window, settings.window_minutes)
    return sent


def ui_base_url() -> str:
    """The Airflow UI's address for links: ``[api] base_url``, else localhost on ``[api] port``."""
    from airflow.sdk import conf

    base = (conf.get("api", "base_url", fallback="") or "").strip()
    return base.rstrip("/") if base else f"http://localhost:{conf.get('api', 'port', fallback='8080')}"


def notify_fleet_run(ti: Any, record: Mapping[str, Any], record_key: str) -> None:
    """Notify what a ``clone_fleet`` run's record holds for a person; never fails the caller."""
    from airflow.sdk import get_current_context

    from clone.notify.events import fleet_events

    try:
        previous = ti.get_previous_dagrun()
        before = ti.xcom_pull(task_ids="summary", key=record_key, run_id=previous.run_id) if previous else None
        events = fleet_events(record, before if isinstance(before, Mapping) else None, dag_id=ti.dag_id,
                              run_id=ti.run_id, base_url=ui_base_url())
        notify(events, get_current_context())
    except Exception as e:  # noqa: BLE001 - a notification problem must not hide the run's own outcome
        log.warning("notifications: %r", e)


def notify_ideas_run(ti: Any, ideas: Sequence[Mapping[str, Any]]) -> None:
    """Notify the BLOCKED ideas of a ``clone_ideas`` run; never fails the caller."""
    from airflow.sdk import get_current_context

    from clone.notify.events import idea_events

    try:
        notify(idea_events(ideas, dag_id=ti.dag_id, run_id=ti.run_id, base_url=ui_base_url()),
               get_current_context())
    except Exception as e:  # noqa: BLE001 - a notification problem must not hide the run's own outcome
        log.warning("notifications: %r", e)
