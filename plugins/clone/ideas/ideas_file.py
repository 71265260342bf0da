"""The ideas file ``ideas.yaml``: validation, loading and status updates keyed by id.

Format (the bash version's JSON entries are valid YAML and load unchanged)::

    ideas:
      - id: tiny-cli                  # required, unique (a string or a number)
        title: A tiny CLI for notes   # what the project is
        summary: One or two lines on what the first version does.
        status: NEW                   # NEW (default) | TRIAGED | ACTIVE | BLOCKED
        repo_name: tiny-cli           # the directory under CLONE_CODE_ROOT and the GitHub repo name
        # written by the orchestrator: last_error, repo_path, github, retry_at and *_at timestamps

One bad entry never stops the others: :func:`load_ideas` returns the good ideas and one message per bad
entry, naming the file and the idea. Every change goes through :func:`update_idea`: under the file's lock,
on a fresh read, touching only the keys it sets, so a concurrent edit loses nothing and comments and key
order survive; where the file cannot be written, in Variables instead (:mod:`clone.state.kept`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from clone.state import kept, store
from clone.util import yamlio
from clone.errors import ConfigError
from clone.fleet.repos_file import GITHUB_SLUG

NEW, TRIAGED, ACTIVE, BLOCKED = "NEW", "TRIAGED", "ACTIVE", "BLOCKED"
STATUSES = (NEW, TRIAGED, ACTIVE, BLOCKED)
TEXT_KEYS = ("title", "summary", "repo_name", "last_error", "repo_path", "github")
KNOWN_KEYS = ("id", "status", *TEXT_KEYS, "retry_at")
#: Timestamps (``created_at``, ``triaged_at``, ...; the bash version's too) may be any ``<word>_at`` key.
TIMESTAMP_KEY = re.compile(r"^[a-z][a-z0-9_]*_at$")


@dataclasses.dataclass(frozen=True)
class Idea:
    """One validated ideas.yaml entry. ``repo_name`` is None when the entry does not set it."""

    id: str
    title: str = ""
    summary: str = ""
    status: str = NEW
    repo_name: str | None = None
    repo_path: str | None = None
    github: str | None = None
    last_error: str | None = None
    retry_at: str | None = None

    def to_dict(self) -> dict[str, Any]:  # a JSON-friendly view, for logs and XCom
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Idea:  # the inverse of to_dict (unknown keys ignored)
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data})

    def due(self, now: dt.datetime | None = None) -> bool:
        """Whether a run should work on it: NEW, TRIAGED, or BLOCKED with a ``retry_at`` that has come."""
        if self.status in (NEW, TRIAGED):
            return True
        if self.status != BLOCKED or not self.retry_at:
            return False
        when = parse_timestamp(self.retry_at)
        return when is not None and when <= (now or utcnow())


def utcnow() -> dt.datetime:
    """Now, in UTC, to the second."""
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def timestamp(moment: dt.datetime | None = None) -> str:
    """``2026-11-24T10:00:00Z``: how the orchestrator writes times."""
    return (moment or utcnow()).astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(value: Any) -> dt.datetime | None:
    """A time written by us, by the bash version or by YAML (a datetime); None if it does not parse."""
    if isinstance(value, dt.datetime):
        moment = value
    else:
        try:
            moment = dt.datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def id_of(raw: Any) -> str | None:
    """The entry's id as a string (ids may be numbers), or None when it has no usable id."""
    if not isinstance(raw, Mapping):
        return None
    value = raw.get("id")
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    return str(value).strip() or None


def _where(source: Path, index: int, raw: Any) -> str:
    idea_id = id_of(raw)
    if idea_id is not None:
        return f"{source}: idea {idea_id!r} (entry {index + 1})"
    hint = raw.get("title") if isinstance(raw, Mapping) else None
    return f"{source}: entry {index + 1}" + (f" (title {str(hint)[:60]!r})" if hint else "")


def _validate(raw: Any, where: str) -> Idea:
    """Check one entry; raise ConfigError naming ``where`` and the field."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: must be a mapping with at least 'id', got {type(raw).__name__}")
    idea_id = id_of(raw)
    if idea_id is None:
        raise ConfigError(f"{where}: field 'id' is required (a non-empty string or number)")
    unknown = sorted(k for k in map(str, raw) if k not in KNOWN_KEYS and not TIMESTAMP_KEY.match(k))
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(unknown)} "
                          f"(known: {', '.join(KNOWN_KEYS)} and *_at timestamps)")
    status = raw.get("status")
    status = NEW if status is None else status
    if status not in STATUSES:
        raise ConfigError(f"{where}: field 'status' {status!r} is unknown (one of: {', '.join(STATUSES)})")
    values: dict[str, Any] = {}
    for key in TEXT_KEYS:
        value = raw.get(key)
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{where}: field '{key}' must be text, got {value!r}")
        values[key] = None if value is None else str(value)  # plain str, not ruamel's quoted-scalar types
    if values["github"] and not GITHUB_SLUG.fullmatch(values["github"]):
        raise ConfigError(f"{where}: field 'github' must look like owner/name, got {values['github']!r}")
    for key in raw:
        if TIMESTAMP_KEY.match(str(key)) and raw[key] is not None and parse_timestamp(raw[key]) is None:
            raise ConfigError(f"{where}: field '{key}' is not a time (like 2026-11-24T10:00:00Z): "
                              f"{raw[key]!r}")
    retry_at = raw.get("retry_at")
    return Idea(id=idea_id, title=(values["title"] or "").strip(), summary=(values["summary"] or "").strip(),
                status=status, repo_name=values["repo_name"], repo_path=values["repo_path"],
                github=values["github"], last_error=values["last_error"],
                retry_at=None if retry_at is None else timestamp(parse_timestamp(retry_at)))


def _entries_of(document: Any, source: Path) -> list[Any]:
    if document is None:
        return []
    if not isinstance(document, Mapping) or not isinstance(document.get("ideas", []), list):
        raise ConfigError(f"{source}: expected a mapping with an 'ideas:' list at the top")
    unknown = sorted(set(map(str, document)) - {"ideas"})
    if unknown:
        raise ConfigError(f"{source}: unknown top-level key(s) {', '.join(unknown)} "
                          "(only 'ideas' is allowed)")
    return list(document.get("ideas") or [])


def validate_entries(raw_entries: Iterable[Any], source: Path) -> tuple[list[Idea], list[str]]:
    """Validate entries. Every entry of a duplicated id is bad (updates by id would be ambiguous);
    a repo_name already used by an earlier idea is bad on the later one."""
    raw_entries = list(raw_entries)
    id_counts = Counter(id_of(raw) for raw in raw_entries)
    ideas: list[Idea] = []
    problems: list[str] = []
    names: dict[str, str] = {}
    for index, raw in enumerate(raw_entries):
        where = _where(source, index, raw)
        try:
            idea = _validate(raw, where)
            if id_counts[idea.id] > 1:
                raise ConfigError(f"{where}: field 'id' {idea.id!r} is used by {id_counts[idea.id]} entries; "
                                  "ids must be unique")
            key = (idea.repo_name or "").strip().casefold()
            if key and key in names:
                raise ConfigError(f"{where}: field 'repo_name' {idea.repo_name!r} is already used by idea "
                                  f"{names[key]!r}")
        except ConfigError as e:
            problems.append(str(e))
            continue
        if key:
            names[key] = idea.id
        ideas.append(idea)
    return ideas, problems


def load_ideas(path: Path) -> tuple[list[Idea], list[str]]:
    """Read ideas.yaml: the valid ideas and one message per invalid entry.

    A missing file holds no ideas; a file that does not parse, or whose top level is wrong, raises
    ConfigError. Inside a task what is kept in Variables applies (:mod:`clone.ideas.kept_ideas`).
    """
    entries, kept_problems = _entries_of(yamlio.load_document(path), path), []
    if store.in_task():
        from clone.ideas import kept_ideas
        entries, kept_problems = kept_ideas.overlay(entries)
    ideas, problems = validate_entries(entries, path)
    return ideas, kept_problems + problems


def get_idea(path: Path, idea_id: str) -> Idea:
    """The idea ``idea_id`` as the file says now; ConfigError when it is gone or invalid."""
    ideas, problems = load_ideas(path)
    for idea in ideas:
        if idea.id == idea_id:
            return idea
    for problem in problems:
        if f"idea {idea_id!r} " in problem:
            raise ConfigError(problem)
    raise ConfigError(f"{path}: idea {idea_id!r} is no longer in the file (removed, or its id changed)")


def _scalar(flow: bool, value: Any) -> Any:
    # In a flow (JSON-style) mapping, quoted strings keep the entry valid JSON.
    return DoubleQuotedScalarString(value) if flow and isinstance(value, str) else value


def update_idea(path: Path, idea_id: str, changes: Mapping[str, Any],
                check: Callable[[list[Idea]], None] | None = None) -> Idea:
    """Apply ``changes`` to the idea ``idea_id`` under the lock, on a fresh read; return the idea.

    A value of None clears a key the entry has (it is not added). Only these keys are touched:
    everything else in the file (other ideas, comments, key order, a person's concurrent edit) is
    kept. ``check`` gets the other valid ideas first, under the same lock, and may raise to stop
    the change. ConfigError when the idea is no longer in the file, or no longer unique.
    """
    if kept.use_variables(path):
        from clone.ideas import kept_ideas
        return kept_ideas.update(path, idea_id, changes, check)

    def mutate(document: Any) -> Idea:
        entries = _entries_of(document, path)
        if check is not None:
            check([idea for idea in validate_entries(entries, path)[0] if idea.id != idea_id])
        matches = [(i, raw) for i, raw in enumerate(entries) if id_of(raw) == idea_id]
        if not matches:
            raise ConfigError(f"{path}: idea {idea_id!r} is no longer in the file (removed, or its id "
                              "changed); not updating it")
        if len(matches) > 1:
            raise ConfigError(f"{path}: idea {idea_id!r} is used by {len(matches)} entries; not updating it")
        index, raw = matches[0]
        flow = isinstance(raw, CommentedMap) and raw.fa.flow_style()
        last_key = next(reversed(raw), None)
        for key, value in changes.items():
            if value is None:
                if key in raw:  # cleared, not removed: the entry keeps its keys and their order
                    raw[key] = None
            elif key in raw:
                raw[key] = _scalar(flow, value)
            else:
                raw[_scalar(flow, key)] = _scalar(flow, value)
        if isinstance(raw, CommentedMap) and not flow:
            yamlio.keep_trailing_comment(raw, last_key)
        return _validate(raw, _where(path, index, raw))

    return yamlio.update_document(path, mutate, empty=lambda: CommentedMap(ideas=CommentedSeq()))


def set_status(path: Path, idea_id: str, status: str, *, check: Callable[[list[Idea]], None] | None = None,
               **fields: Any) -> Idea:
    """Move the idea to ``status`` (stamping ``updated_at`` and ``<status>_at``) and set ``fields``.

    Leaving BLOCKED clears ``last_error`` and ``retry_at`` unless ``fields`` sets them.
    """
    if status not in STATUSES:
        raise ValueError(f"unknown idea status {status!r}")
    now = timestamp()
    changes: dict[str, Any] = {"status": status}
    if status != BLOCKED:
        changes.update(last_error=None, retry_at=None)
    stamp = {TRIAGED: "triaged_at", ACTIVE: "activated_at", BLOCKED: "blocked_at"}.get(status)
    if stamp:
        changes[stamp] = now
    changes.update(fields)
    changes["updated_at"] = now
    return update_idea(path, idea_id, changes, check)


def block(path: Path, idea_id: str, error: str, *, retry: bool) -> Idea:
    """Mark the idea BLOCKED with ``error``; with ``retry``, the next run picks it up again by itself."""
    return set_status(path, idea_id, BLOCKED, last_error=error, retry_at=timestamp() if retry else None)
