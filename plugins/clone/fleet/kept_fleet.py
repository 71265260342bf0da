"""repos.yaml entries kept in Airflow Variables where the file cannot be written (:mod:`clone.state.kept`):
checkouts discovery found (``clone.fleet.discovered``) and repos the ideas DAG enrolled
(``clone.fleet.enrolled.<name>``). They join the file's entries on every read; the file wins."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from clone.errors import ConfigError
from clone.fleet.repo_entry import RepoEntry, raw_name, validate_entry
from clone.state import kept, store

log = logging.getLogger(__name__)


def _real(path: str | Path) -> str:
    return str(Path(path).expanduser().resolve())


def discovered_raw() -> list[Any]:
    """The entries of ``clone.fleet.discovered`` (unvalidated); ConfigError when its shape is wrong."""
    value = kept.read(kept.DISCOVERED)
    if value is None:
        return []
    return list(kept.field(value, kept.DISCOVERED, "repos", list, "a list of {path, name} entries"))


def kept_raw() -> tuple[list[tuple[str, Any]], list[str]]:
    """Every kept entry with where it comes from (a Variable, and an entry number), and one problem per
    Variable that cannot be read."""
    found: list[tuple[str, Any]] = []
    problems: list[str] = []
    try:
        found += [(f"Variable {kept.DISCOVERED}: entry {i + 1}", raw) for i, raw in enumerate(discovered_raw())]
    except ConfigError as e:
        problems.append(str(e))
    for name in sorted(store.names(kept.ENROLLED)):
        try:
            found.append((f"Variable {name}", kept.read(name)))
        except ConfigError as e:
            problems.append(str(e))
    return found, problems


def merged(entries: Iterable[RepoEntry], problems: Iterable[str]) -> tuple[list[RepoEntry], list[str]]:
    """The file's valid entries, then the kept ones the file does not list. A kept entry for a checkout the
    file lists is dropped (the file's entry applies); one whose name the file uses is a problem."""
    entries, problems = list(entries), list(problems)
    paths = {_real(e.path) for e in entries if e.path}
    names = {e.name for e in entries}
    found, unreadable = kept_raw()
    problems += unreadable
    for where, raw in found:
        hint = raw.get("path") if isinstance(raw, dict) else None
        where = f"{where} ({hint})" if isinstance(hint, str) else where
        try:
            entry = validate_entry(raw, where)
        except ConfigError as e:
            problems.append(str(e))
            continue
        real = _real(entry.path) if entry.path else entry.url
        if real in paths:
            continue
        if entry.name in names:
            problems.append(f"{where}: field 'name' {entry.name!r} is already used by another entry; ignored "
                            "(repos.yaml wins: give one of them another name)")
            continue
        entries.append(entry)
        paths.add(real)
        names.add(entry.name)
    return entries, problems


def merge_discovered(path: Path, discovered: Iterable[Path]) -> list[str]:
    """Keep discovered checkouts that neither repos.yaml nor the Variables list in ``clone.fleet.discovered``;
    returns the paths added. Entries the file has come to list are dropped from the Variable."""
    from clone.fleet.repos_file import file_entries, load_fleet, unique_name

    raws = [raw for raw in file_entries(path) if isinstance(raw, dict)]
    in_file = {_real(raw["path"]) for raw in raws if isinstance(raw.get("path"), str)}
    everything, _ = load_fleet(path)
    known_paths = in_file | {_real(e.path) for e in everything if e.path}
    known_names = {raw_name(raw) for raw in raws} | {e.name for e in everything}
    try:
        before = discovered_raw()
    except ConfigError as e:
        log.warning("%s; starting it afresh", e)
        before = []
    repos = [raw for raw in before
             if not (isinstance(raw, dict) and isinstance(raw.get("path"), str) and _real(raw["path"]) in in_file)]
    added = []
    for checkout in sorted(Path(p) for p in discovered):
        real = _real(checkout)
        if real in known_paths:
            continue
        name = unique_name(checkout, known_names)
        repos.append({"path": str(checkout), "name": name})
        known_paths.add(real)
        known_names.add(name)
        added.append(str(checkout))
    if repos != before:
        kept.write(kept.DISCOVERED, {"repos": repos})
        log.info("discover: %d checkout(s) kept in Variable %s (%s is not written)", len(repos),
                 kept.DISCOVERED, path)
    return added


def enrol(path: Path, checkout: Path, name: str, *, github: str | None = None,
          branch: str | None = None) -> bool:
    """Keep one enrolled checkout in ``clone.fleet.enrolled.<name>``; False when some entry (in the file or
    kept) already has its path; ConfigError when another checkout has ``name``."""
    from clone.fleet.repos_file import load_fleet

    real = _real(checkout)
    entries, _ = load_fleet(path)
    for entry in entries:
        if entry.path and _real(entry.path) == real:
            return False
        if entry.name == name:
            raise ConfigError(f"{path} (with the kept Variables): field 'name' {name!r} is already taken by "
                              f"{entry.path or entry.url}; cannot enrol {checkout} under the same name")
    value = {key: item for key, item in (("path", str(checkout)), ("name", name), ("github", github),
                                         ("branch", branch)) if item}
    kept.write(kept.ENROLLED + store.key_part(name), value)
    return True
