#!/usr/bin/env python
"""Load connections, pools and variables from ``airflow_settings.yaml`` into Airflow's DB.

The file uses the Astro CLI format::

    airflow:
      connections:  # conn_id, conn_type, conn_host, conn_schema, conn_login, conn_password,
                    # conn_port, conn_extra (mapping or JSON string), or conn_uri instead
      pools:        # pool_name, pool_slot, pool_description
      variables:    # variable_name, variable_value

String values may reference the environment as ``${VAR}`` (VAR must be set) or
``${VAR:-default}`` (default when unset or empty); ``$$`` is a literal ``$``. The whole file
is validated before anything is written: unknown keys, missing names, duplicates and bad
types fail naming the entry and field. The entries are then written to the JSON files
Airflow's own commands import (``airflow connections import --overwrite``, ``airflow pools
import``, ``airflow variables import --action-on-existing-key overwrite``), in a private
temporary directory removed afterwards: re-running replaces entries, never duplicates them.
``airflow db migrate`` must have run. Passwords are never printed.

Usage, with ``include/scripts/airflow_env.sh`` sourced::

    python include/scripts/load_airflow_settings.py [FILE] [--pool-slots NAME=N] [--check]

Parsing and validation live in ``plugins/clone/config/airflow_settings.py``; this script writes the
import files and runs Airflow's commands.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins"))

from clone.config.airflow_settings import (  # noqa: E402  (after the path, like every script here)
    DEFAULT_FILE,
    ConnectionSpec,
    LoadError,
    PoolSpec,
    Settings,
    SettingsError,
    expand_env,
    override_pool_slots,
    parse_settings,
    read_settings,
)

__all__ = ["ConnectionSpec", "LoadError", "PoolSpec", "Settings", "SettingsError", "apply_settings",
           "expand_env", "import_files", "main", "override_pool_slots", "parse_settings", "read_settings"]


def import_files(settings: Settings, directory: Path) -> dict[str, Path]:
    """Write the files ``airflow connections|pools|variables import`` read (only non-empty sections).

    Every field is written, empty ones as null, so an import replaces the whole entry, except that
    Airflow keeps a stored password when the new one is empty. The files are private (0600).
    """
    connections = {spec.conn_id: spec.uri if spec.uri else {
        "conn_type": spec.conn_type, "host": spec.host, "schema": spec.schema, "login": spec.login,
        "password": spec.password, "port": spec.port, "extra": spec.extra} for spec in settings.connections}
    pools = {pool.name: {"slots": pool.slots, "description": pool.description, "include_deferred": False}
             for pool in settings.pools}
    variables = dict(settings.variables)
    written = {}
    for kind, content in (("connections", connections), ("pools", pools), ("variables", variables)):
        if content:
            path = directory / f"{kind}.json"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(content, handle)
            written[kind] = path
    return written


#: The Airflow command that imports each kind, replacing entries that already exist.
_IMPORT = {"connections": ("connections", "import", "--overwrite"),
           "pools": ("pools", "import"),
           "variables": ("variables", "import", "--action-on-existing-key", "overwrite")}


def _airflow_binary() -> str:
    beside = Path(sys.executable).with_name("airflow")
    return str(beside) if beside.exists() else (shutil.which("airflow") or "airflow")


def apply_settings(settings: Settings, timeout: float = 600) -> list[str]:
    """Import everything with Airflow's own CLI; return its report lines (never a password)."""
    from clone.errors import CommandError
    from clone.util import runner

    report: list[str] = []
    with tempfile.TemporaryDirectory(prefix="clone-airflow-settings-") as tmp:  # 0700
        for kind, path in import_files(settings, Path(tmp)).items():
            argv = (_airflow_binary(), *_IMPORT[kind], str(path))
            try:
                result = runner.run(argv, cwd=Path(tmp), env=os.environ, timeout=timeout, check=False)
            except CommandError as e:
                raise LoadError(f"cannot run `airflow {' '.join(_IMPORT[kind])}`: {e}") from e
            output = result.tail(20)
            if not result.ok or "failed" in output.lower() or "could not import" in output.lower():
                if "no such table" in output or "OperationalError" in output:
                    home = os.environ.get("AIRFLOW_HOME", "~/airflow")
                    raise LoadError(f"`airflow {' '.join(_IMPORT[kind][:2])}` cannot write to Airflow's metadata "
                                    f"DB; did `airflow db migrate` run for AIRFLOW_HOME={home}?")
                what = "timed out" if result.timed_out else f"exited {result.returncode}"
                raise LoadError(f"`airflow {' '.join(_IMPORT[kind])}` {what}:\n{output}")
            report += [line for line in result.stdout.splitlines() if line.strip()]
    return report


def _pool_slots_arg(text: str) -> tuple[str, int]:
    name, _, slots = text.partition("=")
    if not name or not re.fullmatch(r"[1-9]\d*", slots):
        raise argparse.ArgumentTypeError(f"expected NAME=N with a whole number N >= 1, got {text!r}")
    return name, int(slots)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code (2 on an invalid file)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", nargs="?", type=Path, default=DEFAULT_FILE, help="default: %(default)s")
    parser.add_argument("--pool-slots", type=_pool_slots_arg, action="append", default=[], metavar="NAME=N",
                        help="override a pool's slots (make up passes clone_agent=$PARALLEL_REPOS)")
    parser.add_argument("--check", action="store_true", help="only validate the file; do not touch Airflow")
    args = parser.parse_args(argv)
    try:
        settings = override_pool_slots(read_settings(args.file, os.environ), dict(args.pool_slots))
        if args.check:
            print(f"{args.file}: OK ({len(settings.connections)} connections, {len(settings.pools)} pools, "
                  f"{len(settings.variables)} variables)")
            return 0
        report = apply_settings(settings)
    except LoadError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for line in report:
        print(f"airflow_settings: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
