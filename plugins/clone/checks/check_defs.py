"""Changes to the definitions of the checks themselves: the way around every other guard.

An agent that cannot delete a test can still turn ``make test`` into ``true``, point ``npm test`` at
``exit 0``, add ``--deselect`` to pytest's ``addopts`` or ``collect_ignore`` to a conftest. This module
compares the old and new versions of the files that define checks and names what changed:

* Makefiles: the prerequisites and recipe of check targets (test, check, lint, ...);
* package.json: check scripts (test, lint, ... and their pre/post hooks);
* pytest settings (pytest.ini, tox.ini ``[pytest]``, setup.cfg ``[tool:pytest]``, pyproject
  ``[tool.pytest.ini_options]``), tox ``[testenv*]`` commands, lint tool tables in pyproject;
* conftest.py lines that skip or deselect tests; noxfile.py, pre-commit, ruff/flake8/eslint/jest configs.

CI workflow files are the ``workflow-edit`` rule of :mod:`clone.checks.guards`.
"""

from __future__ import annotations

import configparser
import json
import re
import tomllib
from collections.abc import Callable, Iterable
from typing import Any

#: (side, path) -> the file's text on that side ("old" or "new"), None when it does not exist there.
Reader = Callable[[str, str], "str | None"]

_CHECK_NAME = r"(?:test|tests|check|lint|typecheck|type-check|verify|ci|unit|integration|e2e)"
_MAKE_TARGET = re.compile(rf"^{_CHECK_NAME}(?:[-_:.].*)?$")
_SCRIPT = re.compile(rf"^(?:pre|post)?{_CHECK_NAME}(?:[-_:.].*)?$")
_RULE = re.compile(r"^(?P<targets>[^\s:=#][^:=#]*?)\s*::?(?![:=])(?P<prereqs>.*)$")
_MAKEFILE = re.compile(r"(?:^|/)(?:GNUmakefile|makefile|Makefile|[^/]+\.mk)$")
_TOOL_CONFIG = re.compile(r"(?:^|/)(?:noxfile\.py|\.pre-commit-config\.ya?ml|\.?ruff\.toml|\.flake8|\.pylintrc"
                          r"|mypy\.ini|\.eslintrc(?:\.\w+)?|eslint\.config\.\w+|jest\.config\.\w+"
                          r"|vitest\.config\.\w+|\.mocharc(?:\.\w+)?|karma\.conf\.\w+|phpunit\.xml(?:\.dist)?)$")
_PYPROJECT_TABLES = ("pytest", "ruff", "mypy", "coverage", "pylint", "tox", "hatch")
_INI_SECTIONS = {"pytest.ini": ("pytest",), "tox.ini": ("pytest", "tox", "flake8"),
                 "setup.cfg": ("tool:pytest", "flake8", "mypy")}
_CONFTEST_WEAKENING = re.compile(r"\bcollect_ignore(?:_glob)?\b|\bpytest_(?:ignore_collect|collection_modifyitems|"
                                 r"runtest_\w+|configure|collection)\b|--deselect|\baddopts\b|\bpytest\.skip\b")


def weakened(files: Iterable[Any], read: Reader | None) -> list[tuple[str, int | None, str]]:
    """(path, line or None, what changed) for each change to a check definition among ``files``
    (FileDiffs: ``old_path``, ``new_path``, ``added``). ``read`` gives whole files; without it only
    line-based rules apply."""
    found: list[tuple[str, int | None, str]] = []
    for diff in files:
        path = diff.new_path or diff.old_path or ""
        name = path.rsplit("/", 1)[-1]
        if name == "conftest.py":
            found += [(path, number, f"conftest.py line that skips or deselects tests: {text.strip()[:80]!r}")
                      for number, text in diff.added if _CONFTEST_WEAKENING.search(text)]
        if _TOOL_CONFIG.search(path) and diff.old_path is not None:
            found.append((path, None, "check tool configuration changed"))
        if read is None or diff.old_path is None:  # a new file defines nothing the base commit was checked by
            continue
        old, new = read("old", diff.old_path), read("new", diff.new_path) if diff.new_path else None
        if old is None:
            continue
        if _MAKEFILE.search(path):
            found += [(path, None, f"Makefile target {t!r} {how}") for t, how in _diff(
                _make_rules(old), _make_rules(new or ""), _MAKE_TARGET)]
        elif name == "package.json":
            found += [(path, None, f"package.json script {k!r} {how}") for k, how in _diff(
                _scripts(old), _scripts(new or ""), _SCRIPT, added_counts=True)]
        elif name == "pyproject.toml":
            found += [(path, None, f"pyproject.toml [tool.{k}] {how}") for k, how in _diff(
                _toml_tables(old), _toml_tables(new or ""), None, added_counts=True)]
        elif name in _INI_SECTIONS or (name == "tox.ini"):
            found += [(path, None, f"{name} {k} {how}") for k, how in _diff(
                _ini(old, name), _ini(new or "", name), None, added_counts=True)]
    return found


def _diff(old: dict[str, Any], new: dict[str, Any], names: re.Pattern | None,
          added_counts: bool = False) -> list[tuple[str, str]]:
    """Keys (matching ``names``) removed or changed; added too with ``added_counts`` (new options weaken)."""
    keys = sorted(k for k in {*old, *new} if names is None or names.match(k))
    changes = []
    for key in keys:
        if key not in new:
            changes.append((key, "removed"))
        elif key not in old:
            if added_counts:
                changes.append((key, "added"))
        elif old[key] != new[key]:
            changes.append((key, "changed"))
    return changes


def _make_rules(text: str) -> dict[str, tuple[str, tuple[str, ...]]]:
    rules: dict[str, tuple[str, tuple[str, ...]]] = {}
    current: list[str] = []
    for line in text.splitlines():
        if line.startswith("\t") and current:
            for target in current:
                prereqs, recipe = rules[target]
                rules[target] = (prereqs, (*recipe, line.strip()))
        elif match := _RULE.match(line):
            current = match.group("targets").split()
            prereqs, _, inline = match.group("prereqs").partition(";")
            for target in current:
                rules[target] = (prereqs.strip(), (inline.strip(),) if inline.strip() else ())
        elif line.strip() and not line.startswith("#"):
            current = []
    return rules


def _scripts(text: str) -> dict[str, Any]:
    try:
        scripts = json.loads(text).get("scripts", {})
    except (ValueError, AttributeError):
        return {"(unparseable)": text}
    return scripts if isinstance(scripts, dict) else {}


def _toml_tables(text: str) -> dict[str, Any]:
    try:
        tool = tomllib.loads(text).get("tool", {})
    except ValueError:
        return {"(unparseable)": text}
    return {name: tool[name] for name in _PYPROJECT_TABLES if isinstance(tool, dict) and name in tool}


def _ini(text: str, name: str) -> dict[str, Any]:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(text)
    except configparser.Error:
        return {"(unparseable)": text}
    wanted = _INI_SECTIONS.get(name, ())
    return {f"[{section}] {key}": value.strip() for section in parser.sections()
            if section in wanted or (name == "tox.ini" and section.startswith("testenv"))
            for key, value in parser.items(section, raw=True)}
