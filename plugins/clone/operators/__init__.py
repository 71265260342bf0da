"""Airflow operators: the deferrable CI wait and the CI autofix loop."""
