"""Airflow operators (glue only): the deferrable CI wait, the CI autofix loop and the land task."""
