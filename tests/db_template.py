"""Replay of the suite's metadata-DB setup commands from a per-session template.

Every real-Airflow test starts with ``airflow db migrate`` and ``airflow pools set`` on an empty
AIRFLOW_HOME (about 4 s and 2.6 s each on CI, far more on a busy machine). Their result depends only on
what is in AIRFLOW_HOME before, the command's arguments, the Airflow configuration in the environment and
the installed Airflow (and providers): :func:`run` keys on exactly that, runs the real command the first
time a key is seen in a session and records the files it left in AIRFLOW_HOME; the next time the same key
is seen, it writes those files back (the SQLite DB byte for byte, ``airflow.cfg`` with the home's path
put back in) and answers with the real run's output. Whatever it cannot key safely it runs for real:
any other command, a failed run, a home with unexpected content, a DB that mentions its home's path.

Templates live in a temporary directory removed when the session ends, so they are never older than the
installed packages. ``make up`` (include/scripts/standalone.py) never comes here, and tests that are
about the migration itself (test_make_up) pass ``template=False`` to :func:`tests.airflow_home.airflow`;
``CLONE_TEST_DB_TEMPLATE=off`` in pytest's environment turns replay off for the whole session.
"""

from __future__ import annotations

import atexit
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

# The commands whose whole effect is on the metadata DB under AIRFLOW_HOME (and airflow.cfg, written by
# any Airflow process that finds none).
REPLAYABLE = (("db", "migrate"), ("pools", "set"))
HOME = "\0AIRFLOW_HOME\0"  # stands for the home's path in recorded text; cannot occur in a real path
# Not read by `db migrate` (airflow/utils/db.py, the migrations) or `pools set`: the env secrets backend
# (connections and variables are looked up when a task asks, never copied into the DB) and the sections of
# the long-running components. Everything else named AIRFLOW* is part of the key, [core] and [database] too.
RUNTIME_ONLY = ("AIRFLOW_CONN_", "AIRFLOW_VAR_", "AIRFLOW__SCHEDULER__", "AIRFLOW__WORKERS__", "AIRFLOW__API__",
                "AIRFLOW__DAG_PROCESSOR__", "AIRFLOW__TRIGGERER__", "AIRFLOW__EXECUTION_API__")
# Read once at import (collection), before fixtures clear CLONE_* variables.
ENABLED = os.environ.get("CLONE_TEST_DB_TEMPLATE", "on") != "off"
MAX_FILES, MAX_BYTES = 20, 64 << 20  # a home larger than a fresh one's is left to the real command

_store: Path | None = None
_templates: dict[str, dict] = {}
_packages: str | None = None


def run(env: dict[str, str], argv: list[str], real: Callable[[], subprocess.CompletedProcess]
        ) -> subprocess.CompletedProcess:
    """``real()`` (the command ``argv`` in ``env``), or its replay when this key was recorded before."""
    args = argv[1:]
    if not ENABLED or tuple(args[:2]) not in REPLAYABLE or not env.get("AIRFLOW_HOME"):
        return real()
    home = Path(env["AIRFLOW_HOME"])
    if not env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{home}/").startswith(f"sqlite:///{home}/"):
        return real()  # a DB server (the Celery test's PostgreSQL) is not under the home: nothing to copy
    before = snapshot(home)
    if before is None:
        return real()
    key = digest({"args": list(args), "env": config(env, home), "home": before, "packages": packages()})
    if key in _templates:
        return replay(_templates[key], home, argv)
    result = real()
    if result.returncode == 0:
        record(key, home, result)
    return result


def snapshot(home: Path) -> dict[str, str] | None:
    """Relative path -> content hash (home path normalised) of everything under ``home``; None if too big."""
    if not home.exists():
        return {}
    if home.is_symlink() or not home.is_dir():
        return None
    found, size = {}, 0
    for path in sorted(home.rglob("*")):
        relative = path.relative_to(home).as_posix()
        if path.is_symlink():
            return None
        if path.is_dir():
            found[relative] = "dir"
            continue
        data = path.read_bytes()
        size += len(data)
        if len(found) > MAX_FILES or size > MAX_BYTES:
            return None
        found[relative] = f"{path.stat().st_mode & 0o777:o}:{hashlib.sha256(normalise(data, home)).hexdigest()}"
    return found


def normalise(data: bytes, home: Path) -> bytes:
    return data.replace(str(home).encode(), HOME.encode())


def test_dir(home: Path) -> str | None:
    """The directory holding ``home`` (a test's tmp_path, with its dags folder): normalised too, if deep."""
    return str(home.parent) if len(home.parent.parts) > 2 else None


def config(env: dict[str, str], home: Path) -> dict[str, str]:
    """The Airflow configuration (and import path) in ``env`` with the test's own paths and free ports
    (``*_PORT`` and the URLs on them, e.g. the execution API's) normalised."""
    base = test_dir(home)
    names = [n for n in env if n.startswith("AIRFLOW") and not n.startswith(RUNTIME_ONLY) or n == "PYTHONPATH"]
    ports = {env[n] for n in env if n.startswith("AIRFLOW") and n.endswith("_PORT") and env[n].isdigit()}
    found = {}
    for name in names:
        if name.endswith("_PORT"):
            continue
        value = env[name].replace(str(home), HOME)
        value = value.replace(base, "\0BASE\0") if base else value
        found[name] = re.sub(r":(\d+)(?!\d)", lambda m: ":\0PORT\0" if m.group(1) in ports else m.group(0), value)
    return found


def packages() -> str:
    """Every installed distribution and version (Airflow, its providers and their migrations)."""
    global _packages
    if _packages is None:
        names = sorted(f"{d.metadata['Name']}=={d.version}" for d in importlib.metadata.distributions())
        _packages = digest(names)
    return _packages


def digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def store() -> Path:
    global _store
    if _store is None:
        _store = Path(tempfile.mkdtemp(prefix="clone-db-templates-"))
        atexit.register(shutil.rmtree, _store, True)
    return _store


def record(key: str, home: Path, result: subprocess.CompletedProcess) -> None:
    """Keep what the real run left under ``home``, unless the DB names the home (it would not move)."""
    files: dict[str, tuple[int, Path] | None] = {}
    for path in sorted(home.rglob("*")):
        relative = path.relative_to(home).as_posix()
        if path.is_symlink():
            return
        if path.is_dir():
            files[relative] = None
            continue
        data = path.read_bytes()
        base = test_dir(home)
        if path.suffix != ".cfg" and any(p.encode() in data for p in (str(home), base) if p):
            return  # a path inside the DB: a copy elsewhere would point back here
        kept = store() / key / relative
        kept.parent.mkdir(parents=True, exist_ok=True)
        kept.write_bytes(normalise(data, home))
        files[relative] = (path.stat().st_mode & 0o777, kept)
    _templates[key] = {"files": files, "returncode": result.returncode,
                       "stdout": result.stdout.replace(str(home), HOME),
                       "stderr": result.stderr.replace(str(home), HOME)}


def replay(template: dict, home: Path, argv: list[str]) -> subprocess.CompletedProcess:
    home.mkdir(parents=True, exist_ok=True)
    for relative, kept in template["files"].items():
        target = home / relative
        if kept is None:
            target.mkdir(parents=True, exist_ok=True)
            continue
        mode, source = kept
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read_bytes().replace(HOME.encode(), str(home).encode()))
        target.chmod(mode)
    return subprocess.CompletedProcess(argv, template["returncode"],
                                       template["stdout"].replace(HOME, str(home)),
                                       template["stderr"].replace(HOME, str(home)))
