"""The fleet file ``repos.yaml``: validation, loading and merge-on-write.

Format (the bash version's JSON ``{"repos": [{"path": "..."}]}`` is valid YAML and loads)::

    repos:
      - path: /abs/path/to/checkout   # required, absolute
        name: widget                  # optional, default the directory name; unique
        enabled: true                 # optional; false = never touched
        branch: main                  # optional; default the remote's default branch, else main
        remote: origin                # optional remote name
        github: owner/name            # optional; default parsed from the remote URL
        tasks_per_repo: 10            # optional per-repo override
        steering: docs/steering.md    # optional steering prompt (absolute, or relative to the repo)
        verify: ["make lint", "make test"]  # optional checks; default detected; [] = none
        setup: ["uv sync --locked"]   # optional setup commands before the agent; default detected; [] = none
        push_mode: gated              # optional: direct | gated | pr (default CLONE_PUSH_MODE)

One bad entry never stops the others: :func:`load_fleet` returns the good entries and a
problem message per bad one, naming the file, the entry and the field.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from clone.util import yamlio
from clone.errors import ConfigError

SAFE_NAME = re.compile(r"[A-Za-z0-9._-]{1,100}")  # always used with fullmatch
GITHUB_SLUG = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
_BRANCH = re.compile(r"^(?!-)(?!.*\.\.)[A-Za-z0-9._/-]{1,200}$")
KNOWN_KEYS = ("path", "name", "enabled", "branch", "remote", "github", "tasks_per_repo", "steering", "verify",
              "push_mode", "setup", "checks_network")


@dataclasses.dataclass(frozen=True)
class RepoEntry:
    """One validated repos.yaml entry."""

    path: str
    name: str
    enabled: bool = True
    branch: str | None = None
    remote: str = "origin"
    github: str | None = None
    tasks_per_repo: int | None = None
    steering: str | None = None
    verify: tuple[str, ...] | None = None
    push_mode: str | None = None
    setup: tuple[str, ...] | None = None
    checks_network: bool = False  # the repo's checks may use the network (they run sandboxed without it)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RepoEntry:
        values = {key: data[key] for key in KNOWN_KEYS if key in data}
        for key in ("verify", "setup"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        return cls(**values)


def is_safe_name(name: str) -> bool:
    """A single directory name: letters, digits, ``.``, ``_``, ``-``; not ``.``/``..``; not an option."""
    return bool(SAFE_NAME.fullmatch(name)) and name not in (".", "..") and not name.startswith("-")


def derive_name(path: Path) -> str:
    """The default name for a checkout: its directory name, made safe."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", path.name).strip("-.") or "repo"
    return name[:100]


def _validate_entry(raw: Any, where: str) -> RepoEntry:
    """Check one entry; raise ConfigError naming ``where`` and the field."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: must be a mapping with at least 'path', got {type(raw).__name__}")
    unknown = sorted(set(map(str, raw)) - set(KNOWN_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(unknown)} (known: {', '.join(KNOWN_KEYS)})")

    def field(key: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
        value = raw.get(key, default)
        if value is None:
            return default
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ConfigError(f"{where}: field '{key}' must be {getattr(kind, '__name__', kind)}, got {value!r}")
        return value

    path_value = field("path", str)
    if not path_value:
        raise ConfigError(f"{where}: field 'path' is required")
    path = Path(path_value).expanduser()
    if not path.is_absolute():
        raise ConfigError(f"{where}: field 'path' must be absolute, got {path_value!r}")
    if not path.is_dir():
        raise ConfigError(f"{where}: field 'path': {path} does not exist")
    if not (path / ".git").exists():
        raise ConfigError(f"{where}: field 'path': {path} is not a git checkout (no .git)")

    name = field("name", str) or derive_name(path)
    if not is_safe_name(name):
        raise ConfigError(f"{where}: field 'name' {name!r} must be 1-100 letters, digits, '.', '_' or '-'")
    branch = field("branch", str)
    if branch is not None and not _BRANCH.fullmatch(branch):
        raise ConfigError(f"{where}: field 'branch' {branch!r} is not a valid branch name")
    remote = field("remote", str, "origin")
    if not SAFE_NAME.fullmatch(remote) or remote.startswith("-"):
        raise ConfigError(f"{where}: field 'remote' {remote!r} is not a valid remote name")
    github = field("github", str)
    if github is not None and not GITHUB_SLUG.fullmatch(github):
        raise ConfigError(f"{where}: field 'github' must look like owner/name, got {github!r}")
    tasks = field("tasks_per_repo", int)
    if tasks is not None and tasks < 1:
        raise ConfigError(f"{where}: field 'tasks_per_repo' must be at least 1, got {tasks}")
    steering = field("steering", str)
    if steering is not None and (not steering.strip() or "\0" in steering):
        raise ConfigError(f"{where}: field 'steering' must be a file path, got {steering!r}")
    verify = field("verify", list)
    if verify is not None:
        from clone.checks.verify import checks_from_config  # local: verify is only needed when the key is set

        try:
            checks_from_config(list(verify))
        except ConfigError as e:
            raise ConfigError(f"{where}: field 'verify': {e}") from None
        verify = tuple(verify)
    setup = field("setup", list)
    if setup is not None:
        from clone.checks.repo_setup import steps_from_config

        try:
            steps_from_config(list(setup))
        except ConfigError as e:
            raise ConfigError(f"{where}: field 'setup': {e}") from None
        setup = tuple(setup)
    push_mode = field("push_mode", str)
    if push_mode is not None and push_mode not in ("direct", "gated", "pr"):
        raise ConfigError(f"{where}: field 'push_mode' must be direct, gated or pr, got {push_mode!r}")
    return RepoEntry(
        steering=steering, verify=verify, push_mode=push_mode, setup=setup,
        path=str(path), name=name, enabled=field("enabled", bool, True), branch=branch,
        remote=remote, github=github, tasks_per_repo=tasks,
        checks_network=field("checks_network", bool, False),
    )


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
        hint = raw.get("name") or raw.get("path")
        if hint:
            label += f" ({hint})"
    return label


def validate_entries(raw_entries: Iterable[Any], source: Path) -> tuple[list[RepoEntry], list[str]]:
    """Validate entries; duplicates of a name or path are errors on the later entry."""
    entries: list[RepoEntry] = []
    problems: list[str] = []
    names: dict[str, str] = {}
    paths: dict[str, str] = {}
    for index, raw in enumerate(raw_entries):
        where = describe(index, raw, source)
        try:
            entry = _validate_entry(raw, where)
            if entry.name in names:
                raise ConfigError(f"{where}: field 'name' {entry.name!r} duplicates {names[entry.name]}")
            real = str(Path(entry.path).resolve())
            if real in paths:
                raise ConfigError(f"{where}: field 'path' {entry.path} duplicates {paths[real]}")
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
    is wrong, raises ConfigError (there is nothing valid to go on).
    """
    return validate_entries(_entries_of(yamlio.load_document(path), path), path)


def merge_discovered(path: Path, discovered: Iterable[Path]) -> list[str]:
    """Add discovered checkouts missing from repos.yaml; keep every entry and key already there.

    Runs under the file lock on a fresh read. Returns the paths it added.
    """
    discovered = [Path(p) for p in discovered]

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
                known_names.add(str(raw.get("name") or derive_name(Path(str(raw.get("path", ""))))))
        added = []
        for checkout in sorted(discovered):
            real = str(checkout.resolve())
            if real in known_paths:
                continue
            item = CommentedMap(path=str(checkout))
            name = derive_name(checkout)
            if name in known_names:
                # Two checkouts share a directory name: disambiguate with the parent's.
                name = f"{derive_name(checkout.parent)}-{name}"[:100]
                suffix = 2
                while name in known_names:
                    name, suffix = f"{name[:95]}-{suffix}", suffix + 1
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
    ConfigError when another checkout already uses ``name``.
    """
    real = str(Path(checkout).resolve())

    def mutate(document: Any) -> bool:
        entries = _entries_of(document, path)
        if "repos" not in document or document["repos"] is None:
            document["repos"] = CommentedSeq()
        for index, raw in enumerate(entries):
            if not isinstance(raw, Mapping) or not isinstance(raw.get("path"), str):
                continue
            if str(Path(raw["path"]).expanduser().resolve()) == real:
                return False
            if str(raw.get("name") or derive_name(Path(raw["path"]))) == name:
                raise ConfigError(f"{describe(index, raw, path)}: field 'name' {name!r} is already taken by "
                                  f"{raw['path']}; cannot enrol {checkout} under the same name")
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
