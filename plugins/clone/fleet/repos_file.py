"""The fleet file ``repos.yaml``: validation, loading and merge-on-write.

Format (the bash version's JSON ``{"repos": [{"path": "..."}]}`` is valid YAML and loads)::

    repos:
      - path: /abs/path/to/checkout   # a local checkout (absolute), or instead:
      # url: https://github.com/acme/widget.git   # any git remote URL (no checkout needed)
        name: widget                  # optional, default the directory (or URL's last part); unique
        enabled: true                 # optional; false = never touched
        branch: main                  # optional; default the remote's default branch, else main
        remote: origin                # optional remote name (path: entries only)
        github: owner/name            # optional; default parsed from the (remote) URL
        tasks_per_repo: 10            # optional per-repo override
        steering: docs/steering.md    # optional steering prompt (absolute, or relative to the repo)
        verify: ["make lint", "make test"]  # optional checks; default detected; [] = none
        setup: ["uv sync --locked"]   # optional setup commands before the agent; default detected; [] = none
        push_mode: gated              # optional: direct | gated | pr (default CLONE_PUSH_MODE)
        deploy_key: widget_deploy     # optional: Airflow connection holding an ssh deploy key for pushes

One bad entry never stops the others: :func:`load_fleet` returns the good entries and a
problem message per bad one, naming the file, the entry and the field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from clone.state import kept, store
from clone.util import yamlio
from clone.util.git import redact_url
from clone.errors import ConfigError
from clone.fleet.remote_url import same_remote
# The entry model lives beside this module; importers take it from here too.
from clone.fleet.repo_entry import (GITHUB_SLUG, KNOWN_KEYS, SAFE_NAME, RepoEntry, derive_name,  # noqa: F401
                                    is_safe_name, raw_name, validate_entry)


def _entries_of(document: Any, source: Path) -> list[Any]:
    if document is None:
        return []
    if not isinstance(document, Mapping) or not isinstance(document.get("repos", []), list):
        raise ConfigError(f"{source}: expected a mapping with a 'repos:' list at the top")
    unknown = sorted(set(map(str, document)) - {"repos"})
    if unknown:
        raise ConfigError(f"{source}: unknown top-level key(s) {', '.join(unknown)} (only 'repos' is allowed)")
    return list(document.get("repos") or [])


def describe(index: int, raw: Any, source: Path) -> str:
    label = f"{source}: entry {index + 1}"
    if isinstance(raw, Mapping):
        hint = raw.get("name") or raw.get("path") or raw.get("url")
        if isinstance(hint, str) and hint:
            hint = redact_url(hint)
            label += f" ({hint})"
    return label


def validate_entries(raw_entries: Iterable[Any], source: Path) -> tuple[list[RepoEntry], list[str]]:
    """Validate entries; duplicates of a name, path or url are errors on the later entry."""
    entries: list[RepoEntry] = []
    problems: list[str] = []
    names: dict[str, str] = {}
    paths: dict[str, str] = {}
    for index, raw in enumerate(raw_entries):
        where = describe(index, raw, source)
        try:
            entry = validate_entry(raw, where)
            if entry.name in names:
                raise ConfigError(f"{where}: field 'name' {entry.name!r} duplicates {names[entry.name]}")
            real = str(Path(entry.path).resolve()) if entry.path else same_remote(entry.url or "")
            if real in paths:
                key = "path" if entry.path else "url"
                raise ConfigError(f"{where}: field '{key}' {redact_url(getattr(entry, key))} duplicates "
                                  f"{paths[real]}")
        except ConfigError as e:
            problems.append(str(e))
            continue
        names[entry.name] = where
        paths[real] = where
        entries.append(entry)
    return entries, problems


def load_fleet(path: Path) -> tuple[list[RepoEntry], list[str]]:
    """Read repos.yaml: the valid entries and one message per invalid entry.

    A file that is missing is an empty fleet; a file that does not parse, or whose top level
    is wrong, raises ConfigError (there is nothing valid to go on). Inside a task the entries kept in
    Variables (:mod:`clone.state.kept`) join them; the file's entries win.
    """
    entries, problems = validate_entries(file_entries(path), path)
    if store.in_task():
        from clone.fleet import kept_fleet
        return kept_fleet.merged(entries, problems)
    return entries, problems


def file_entries(path: Path) -> list[Any]:
    """The raw entries of repos.yaml as the file holds them."""
    return _entries_of(yamlio.load_document(path), path)


def unique_name(checkout: Path, known_names: set[str]) -> str:
    """The checkout's directory name; when another entry has it, prefixed with the parent's (and numbered)."""
    name = derive_name(checkout)
    if name in known_names:
        name = f"{derive_name(checkout.parent)}-{name}"[:100]
        suffix = 2
        while name in known_names:
            name, suffix = f"{name[:95]}-{suffix}", suffix + 1
    return name


def merge_discovered(path: Path, discovered: Iterable[Path]) -> list[str]:
    """Add discovered checkouts missing from repos.yaml; keep every entry and key already there.

    Runs under the file lock on a fresh read. Returns the paths it added. Where the file cannot be
    written (:mod:`clone.state.kept`) they are kept in the Variable ``clone.fleet.discovered`` instead.
    """
    discovered = [Path(p) for p in discovered]
    if kept.use_variables(path):
        from clone.fleet import kept_fleet
        return kept_fleet.merge_discovered(path, discovered)

    def mutate(document: Any) -> list[str]:
        entries = _entries_of(document, path)
        if "repos" not in document or document["repos"] is None:
            document["repos"] = CommentedSeq()
        known_paths = set()
        known_names = set()
        for raw in entries:
            if isinstance(raw, Mapping):
                if isinstance(raw.get("path"), str):
                    known_paths.add(str(Path(raw["path"]).expanduser().resolve()))
                known_names.add(raw_name(raw))
        added = []
        for checkout in sorted(discovered):
            real = str(checkout.resolve())
            if real in known_paths:
                continue
            item = CommentedMap(path=str(checkout))
            name = unique_name(checkout, known_names)
            if name != derive_name(checkout):
                item["name"] = name
            document["repos"].append(item)
            known_paths.add(real)
            known_names.add(name)
            added.append(str(checkout))
        return added

    return yamlio.update_document(path, mutate, empty=lambda: CommentedMap(repos=CommentedSeq()))


def enrol_repo(path: Path, checkout: Path, name: str, *, github: str | None = None,
               branch: str | None = None, comment: str | None = None) -> bool:
    """Add one checkout to repos.yaml as ``name`` unless an entry already has its path.

    Runs under the file lock on a fresh read; every entry, key and comment already there is kept.
    Returns True when the entry was added, False when the checkout was already enrolled. Raises
    ConfigError when another checkout already uses ``name``. Where the file cannot be written
    (:mod:`clone.state.kept`) the entry is kept in the Variable ``clone.fleet.enrolled.<name>``.
    """
    if kept.use_variables(path):
        from clone.fleet import kept_fleet
        return kept_fleet.enrol(path, checkout, name, github=github, branch=branch)
    real = str(Path(checkout).resolve())

    def mutate(document: Any) -> bool:
        entries = _entries_of(document, path)
        if "repos" not in document or document["repos"] is None:
            document["repos"] = CommentedSeq()
        for index, raw in enumerate(entries):
            if not isinstance(raw, Mapping):
                continue
            if isinstance(raw.get("path"), str) and str(Path(raw["path"]).expanduser().resolve()) == real:
                return False
            if raw_name(raw) == name:
                raise ConfigError(f"{describe(index, raw, path)}: field 'name' {name!r} is already taken by "
                                  f"{redact_url(str(raw.get('path') or raw.get('url')))}; cannot enrol "
                                  f"{checkout} under the same name")
        # In a JSON-style file (the bash version's) the new entry is JSON too: quoted, no comment.
        flow = isinstance(document["repos"], CommentedSeq) and document["repos"].fa.flow_style()
        item = CommentedMap()
        for key, value in (("path", str(checkout)), ("name", name), ("github", github), ("branch", branch)):
            if value:
                item[DoubleQuotedScalarString(key) if flow else key] = \
                    DoubleQuotedScalarString(value) if flow else value
        if flow:
            item.fa.set_flow_style()
        elif comment:
            item.yaml_add_eol_comment(comment, "path")
        document["repos"].append(item)
        return True

    return yamlio.update_document(path, mutate, empty=lambda: CommentedMap(repos=CommentedSeq()))
