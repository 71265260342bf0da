"""The two DAG factories (dag_factory, ideas_dag), the run summary (summary), the run note
(run_note) and the fleet-wide controls (controls). Builds DAGs from the other packages; nothing
below ``clone.workflow`` imports it.
"""
