"""One repos.yaml entry: the validated :class:`RepoEntry` and the checks that make it (the file's format is
described in :mod:`clone.fleet.repos_file`)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from clone.errors import ConfigError
from clone.fleet.remote_url import check_url, github_slug_from_url, name_from_url

SAFE_NAME = re.compile(r"[A-Za-z0-9._-]{1,100}")  # always used with fullmatch
GITHUB_SLUG = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
_BRANCH = re.compile(r"^(?!-)(?!.*\.\.)[A-Za-z0-9._/-]{1,200}$")
KNOWN_KEYS = ("path", "url", "name", "enabled", "branch", "remote", "github", "tasks_per_repo", "steering",
              "verify", "push_mode", "setup", "checks_network", "deploy_key")


@dataclasses.dataclass(frozen=True, kw_only=True)
class RepoEntry:
    """One validated repos.yaml entry: a local checkout (``path``) or a remote only (``url``)."""

    path: str | None = None
    url: str | None = None
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
    deploy_key: str | None = None  # an Airflow connection holding this repo's ssh deploy key (clone.util.git_auth)

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


def raw_name(raw: Mapping[str, Any]) -> str:
    """The name an unvalidated entry would get: its ``name``, else derived from its path or url."""
    if raw.get("name"):
        return str(raw["name"])
    if isinstance(raw.get("url"), str) and not raw.get("path"):
        return name_from_url(raw["url"])
    return derive_name(Path(str(raw.get("path", ""))))


def validate_entry(raw: Any, where: str) -> RepoEntry:
    """Check one entry; raise ConfigError naming ``where`` and the field."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: must be a mapping with 'path' or 'url', got {type(raw).__name__}")
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

    path_value, url = field("path", str), field("url", str)
    if bool(path_value) == bool(url):
        raise ConfigError(f"{where}: give exactly one of 'path' (a local checkout) and 'url' (a git remote "
                          f"URL), got {'both' if path_value else 'neither'}")
    path = None
    if url:
        url = check_url(url, where)
        if "remote" in raw:
            raise ConfigError(f"{where}: field 'remote' applies to 'path:' entries only (a 'url:' entry is "
                              "its own remote)")
    else:
        path = Path(path_value).expanduser()
        if not path.is_absolute():
            raise ConfigError(f"{where}: field 'path' must be absolute, got {path_value!r}")
        if not path.is_dir():
            raise ConfigError(f"{where}: field 'path': {path} does not exist")
        if not (path / ".git").exists():
            raise ConfigError(f"{where}: field 'path': {path} is not a git checkout (no .git)")

    name = field("name", str) or (name_from_url(url) if url else derive_name(path))
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
    github = github or (github_slug_from_url(url) if url else None)
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
    deploy_key = field("deploy_key", str)
    if deploy_key is not None and not SAFE_NAME.fullmatch(deploy_key):
        raise ConfigError(f"{where}: field 'deploy_key' must name an Airflow connection (letters, digits, '.', "
                          f"'_', '-'), got {deploy_key!r}")
    if deploy_key is not None and url:
        from clone.util.git_auth import kind_of

        if kind_of(url)[0] != "ssh":
            raise ConfigError(f"{where}: field 'deploy_key' needs an ssh 'url' (git@host:owner/repo.git or "
                              f"ssh://...), got {url!r}")
    return RepoEntry(
        deploy_key=deploy_key,
        steering=steering, verify=verify, push_mode=push_mode, setup=setup,
        path=str(path) if path else None, url=url, name=name, enabled=field("enabled", bool, True),
        branch=branch,
        remote=remote, github=github, tasks_per_repo=tasks,
        checks_network=field("checks_network", bool, False),
    )
