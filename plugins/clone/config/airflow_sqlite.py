"""SQLite settings for Airflow's metadata database in local development.

``include/scripts/airflow_env.sh`` points Airflow at this module through
``AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS=clone.config.airflow_sqlite.CONNECT_ARGS`` (and the
``..._ASYNC`` twin) whenever the metadata DB is SQLite. ``airflow.settings.configure_orm`` imports
them with ``conf.getimport`` right before it creates the engine; ``settings.initialize()`` runs it
after ``prepare_syspath_for_config_and_plugins()`` has appended the plugins folder to ``sys.path``.
Every process that opens the metadata DB configures the ORM this way (scheduler, dag-processor,
triggerer, api-server, every CLI command such as ``airflow backfill create``); processes forked from
them (LocalExecutor workers, DAG parsers) inherit the module. Task processes do not touch the DB in
Airflow 3 (they go through the execution API).

Two fixes, both needed under load (``make up``, 2 cores):

* ``CONNECT_ARGS``: a 60 s busy timeout instead of SQLite's 5 s, so a writer waits for another.
* :func:`begin_immediate_before_outer_savepoint`, registered on every SQLAlchemy ``Engine`` when this
  module is imported. pysqlite (Python 3.11, legacy transaction control) issues ``BEGIN`` only before
  INSERT/UPDATE/DELETE, so a plain transaction takes the write lock with its first statement and the
  busy timeout applies. A ``SAVEPOINT`` outside a transaction (``session.begin_nested()``, which
  ``airflow backfill create`` uses for every run it creates) instead opens a *deferred* transaction:
  its SELECT pins a WAL snapshot, and when its INSERT then needs the write lock after another process
  committed, SQLite answers ``database is locked`` at once (SQLITE_BUSY_SNAPSHOT; no busy handler,
  since waiting cannot help). The backfill then deleted its half-created runs while the scheduler was
  already running them, and the scheduler died with ``StaleDataError``. Starting that transaction with
  ``BEGIN IMMEDIATE`` takes the write lock up front, under the busy timeout. Only top-level savepoints
  change; every other transaction keeps pysqlite's behaviour (reads take no lock).

This module must not import ``airflow`` (or ``clone/__init__.py`` do so): Airflow imports it while it
is still initialising, which would be circular. SQLAlchemy is already loaded by then.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

# Separate dicts on purpose: configure_orm adds ``check_same_thread`` to the sync dict in place.
CONNECT_ARGS = {"timeout": 60}
"""Keyword arguments for ``sqlite3.connect`` (sync engine). ``timeout`` is the busy timeout in seconds."""

ASYNC_CONNECT_ARGS = {"timeout": 60}
"""Keyword arguments for ``aiosqlite.connect`` (async engine used by the API server)."""


def begin_immediate_before_outer_savepoint(conn: Connection, name: Any) -> None:
    """Before a ``SAVEPOINT`` that would open a transaction on SQLite, open it with ``BEGIN IMMEDIATE``.

    A ``savepoint`` engine event (SQLAlchemy fires it before sending ``SAVEPOINT``). Only the sync
    pysqlite driver exposes ``in_transaction``; on other drivers (aiosqlite) this does nothing.
    """
    if conn.dialect.name != "sqlite":
        return
    dbapi_connection = conn.connection.dbapi_connection
    if getattr(dbapi_connection, "in_transaction", True):
        return  # already in a transaction (a write began it, or an outer savepoint did)
    dbapi_connection.execute("BEGIN IMMEDIATE")


if not event.contains(Engine, "savepoint", begin_immediate_before_outer_savepoint):
    event.listen(Engine, "savepoint", begin_immediate_before_outer_savepoint)
