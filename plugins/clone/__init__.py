"""Clone: run an AI coding agent in a hands-off loop across a fleet of git repositories.

The package lives under ``plugins/`` so that Airflow puts it on ``sys.path`` for the
DAG processor, the workers and the triggerer alike. ``plugins/.airflowignore`` keeps
Airflow's plugin loader from importing its modules one by one as plugins.
"""
