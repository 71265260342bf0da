"""What the JSON-lines event parsers of the codex and claude agents share: reading one stdout line as an
event, handing it to the agent's own renderer, and never raising on what an agent prints (a line that is
not a JSON object is logged as it is; an event whose shape no renderer foresaw is skipped with a warning).
"""

from __future__ import annotations

import json
from typing import Any, Generic, TypeVar

from clone.agents.base import log

Rendered = TypeVar("Rendered")


def short(text: Any, limit: int = 400) -> str:
    """``text`` on one line, cut to ``limit`` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class EventParser(Generic[Rendered]):
    """The line-by-line loop; a subclass renders one event (:meth:`_event`) and says what a plain line is."""

    agent = "agent"  # its name, for the log

    def feed(self, line: str) -> Rendered:
        """Digest one stdout line; return what to log for it. Never raises: whatever the agent
        prints, a line it cannot make sense of is logged and skipped."""
        try:
            event = json.loads(line)
        except (ValueError, RecursionError):
            return self._plain(line)
        if not isinstance(event, dict):
            return self._plain(line)
        kind = event.get("type")
        kind = kind if isinstance(kind, str) else "?"
        try:
            return self._event(kind, event)
        except Exception as e:  # a shape no branch foresaw: skip it, say so
            log.warning("%s: skipped a malformed %r event (%s: %s): %s", self.agent, kind, type(e).__name__, e,
                        short(line, 300))
            return self._plain(f"skipped a malformed {kind} event")

    def _plain(self, text: str) -> Rendered:
        raise NotImplementedError

    def _event(self, kind: str, event: dict[str, Any]) -> Rendered:
        raise NotImplementedError
