"""Settings: the environment knobs (settings), DAG params from the trigger form (params), which
environment each kind of subprocess sees (environment), per-task timeouts and priorities (timeouts)
and the SQLite tuning Airflow's metadata DB gets in local development (airflow_sqlite).
Imports only ``clone.errors`` and the standard library.
"""
