"""Triggers run by Airflow's triggerer (which imports them from plugins/, not dags/): the CI wait's
trigger (ci; its import path ``clone.triggers.ci.GitHubCITrigger`` is stored with deferred tasks and
must not move). May import only ``clone.github``.
"""
