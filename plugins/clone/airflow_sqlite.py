"""SQLite connect arguments for Airflow's metadata database in local development.

``include/scripts/airflow_env.sh`` points Airflow at these through
``AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS=clone.airflow_sqlite.CONNECT_ARGS`` (and the
``..._ASYNC`` twin) whenever the metadata DB is SQLite. Airflow imports them with
``conf.getimport`` in ``airflow.settings.configure_orm``, which ``settings.initialize()`` runs
only after ``prepare_syspath_for_config_and_plugins()`` has appended the plugins folder to
``sys.path``; so every component (scheduler, dag-processor, api-server, triggerer,
``airflow db migrate``) can import them.

Why: with SQLite's default 5 s busy timeout, concurrent writers from the scheduler,
dag-processor and triggerer hit ``database is locked`` and crash. A 60 s timeout together with
``PRAGMA journal_mode=WAL`` (set once by ``make up``) and a parallelism of 4 holds.

Keep this module free of imports: Airflow imports it while it is still initialising, so
importing ``airflow`` here (or in ``clone/__init__.py``) would be circular.
"""

# Separate dicts on purpose: configure_orm adds ``check_same_thread`` to the sync dict in place.
CONNECT_ARGS = {"timeout": 60}
"""Keyword arguments for ``sqlite3.connect`` (sync engine). ``timeout`` is the busy timeout in seconds."""

ASYNC_CONNECT_ARGS = {"timeout": 60}
"""Keyword arguments for ``aiosqlite.connect`` (async engine used by the API server)."""
