"""The durable docs every repo keeps: AGENTS.md, PROJECT_MEMORY.md, INCIDENTS.md, CLONE_FEATURES.md.

The orchestrator makes sure they exist (from the templates in ``include/templates/``) and
writes INCIDENTS.md entries for the failures it sees itself.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

from clone.settings import TEMPLATES_DIR

AGENTS = "AGENTS.md"
MEMORY = "PROJECT_MEMORY.md"
INCIDENTS = "INCIDENTS.md"
BACKLOG = "CLONE_FEATURES.md"
DOCS = (AGENTS, MEMORY, INCIDENTS, BACKLOG)


def render_template(doc: str, repo_name: str) -> str:
    return (TEMPLATES_DIR / doc).read_text(encoding="utf-8").format(repo_name=repo_name)


def ensure_docs(workdir: Path, repo_name: str) -> list[str]:
    """Create whichever memory docs are missing; never touch one that exists. Returns those created."""
    created = []
    for doc in DOCS:
        target = workdir / doc
        if not target.exists():
            target.write_text(render_template(doc, repo_name), encoding="utf-8")
            created.append(doc)
    return created


@dataclasses.dataclass(frozen=True)
class Incident:
    """One failure the orchestrator saw, in INCIDENTS.md's entry format."""

    kind: str
    title: str
    what_happened: str
    root_cause: str
    prevention: str
    context: str = ""

    def render(self, when: dt.datetime | None = None) -> str:
        when = when or dt.datetime.now(dt.timezone.utc)
        lines = [
            f"## {when:%Y-%m-%d %H:%M} UTC — {self.kind}: {self.title}",
            f"- What happened: {_one_paragraph(self.what_happened)}",
            f"- Root cause: {_one_paragraph(self.root_cause)}",
            f"- Prevention: {_one_paragraph(self.prevention)}",
        ]
        if self.context:
            lines.append(f"- Context: {_one_paragraph(self.context)}")
        return "\n".join(lines) + "\n"


def _one_paragraph(text: str, limit: int = 1500) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def append_incident(workdir: Path, repo_name: str, incident: Incident) -> Path:
    """Append ``incident`` to the repo's INCIDENTS.md (created from the template if missing)."""
    path = workdir / INCIDENTS
    text = path.read_text(encoding="utf-8") if path.exists() else render_template(INCIDENTS, repo_name)
    if not text.endswith("\n"):
        text += "\n"
    path.write_text(text + "\n" + incident.render(), encoding="utf-8")
    return path


def read_doc(workdir: Path, doc: str) -> str:
    path = workdir / doc
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""
