"""Rate limiting: at most CLONE_NOTIFY_MAX_PER_WINDOW messages per CLONE_NOTIFY_WINDOW_MINUTES; above
that, one digest carries every pending event; with no room left, events wait for the next message.
The same event (kind, repo, reason) is not sent again within CLONE_NOTIFY_REPEAT_HOURS. Pure: the
state is a JSON-safe dict the caller keeps (an Airflow Variable, see ``clone.notify.send``)."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from clone.notify.events import KINDS, Event

MAX_HELD = 500  # pending events kept for the next digest; older ones are dropped (and counted)


@dataclasses.dataclass(frozen=True)
class Message:
    """One notification: a subject line, a plain-text body, and the events it carries."""

    subject: str
    body: str
    events: tuple[Event, ...]
    is_digest: bool = False


def _lines(event: Event) -> list[str]:
    lines = [f"{event.kind}: {event.repo}", f"  reason: {event.reason}"]
    lines += [f"  {name}: {url}" for name, url in event.links]
    return lines


def single(event: Event) -> Message:
    return Message(f"[clone] {event.kind}: {event.repo}", "\n".join(_lines(event)) + "\n", (event,))


def digest(events: Sequence[Event], dropped: int = 0) -> Message:
    counts = Counter(e.kind for e in events)
    summary = ", ".join(f"{counts[k]} {k}" for k in KINDS if counts[k])
    body = [f"{len(events)} events: {summary}", ""]
    for kind in KINDS:
        for event in (e for e in events if e.kind == kind):
            body += _lines(event)
    if dropped:
        body += ["", f"({dropped} older event(s) were dropped: more than {MAX_HELD} waited)"]
    return Message(f"[clone] digest: {len(events)} events ({summary})", "\n".join(body) + "\n", tuple(events),
                   is_digest=True)


def plan(events: Sequence[Event], state: Mapping[str, Any] | None, now: float, *, max_per_window: int,
         window_seconds: float, repeat_seconds: float) -> tuple[list[Message], dict[str, Any]]:
    """The messages to send now and the state to keep (``sent`` times, ``seen`` event keys, ``held``
    events). Assumes every message returned is sent; see :func:`unsent` when some were not."""
    state = state or {}
    seen = {k: float(t) for k, t in (state.get("seen") or {}).items() if now - float(t) < repeat_seconds}
    sent = [float(t) for t in state.get("sent") or () if now - float(t) < window_seconds]
    held = [Event.from_dict(e) for e in state.get("held") or () if isinstance(e, Mapping)]
    dropped = int(state.get("dropped") or 0)
    fresh, keys = [], {e.key for e in held}
    for event in events:
        if event.key not in seen and event.key not in keys:
            fresh.append(event)
            keys.add(event.key)
    pending = held + fresh
    room = max(0, max_per_window - len(sent))
    messages: list[Message] = []
    if pending and room:
        if len(pending) <= room and not held:
            messages = [single(e) for e in pending]
        else:
            messages = [digest(pending, dropped)]
        pending, dropped = [], 0
    if len(pending) > MAX_HELD:
        dropped += len(pending) - MAX_HELD
        pending = pending[-MAX_HELD:]
    for event in fresh:
        seen[event.key] = now
    sent += [now] * len(messages)
    return messages, {"sent": sent, "seen": seen, "held": [e.to_dict() for e in pending], "dropped": dropped}


def unsent(state: dict[str, Any], failed: Sequence[Message]) -> dict[str, Any]:
    """``state`` after ``failed`` messages could not be sent: their events wait for the next try."""
    if not failed:
        return state
    held = [e.to_dict() for m in failed for e in m.events] + list(state.get("held") or ())
    seen = dict(state.get("seen") or {})
    for message in failed:
        for event in message.events:
            seen.pop(event.key, None)
    return {**state, "sent": list(state.get("sent") or ())[:-len(failed)] or [], "seen": seen,
            "held": held[:MAX_HELD]}
