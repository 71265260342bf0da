"""
### clone_fleet

The Airflow DAG for one cycle of Clone over the fleet in `repos.yaml`:

**discover** (scan `CLONE_CODE_ROOT`, merge new checkouts into repos.yaml) ->
for each enabled repo, in parallel (at most `PARALLEL_REPOS` agents at once, pool `clone_agent`):
**agent_pass** -> **push** -> **ci_wait** (deferrable) -> **autofix** -> **land** (gated and pr work),
then **summary** (the run note, the fleet record, notifications).

Each mapped instance is labelled with its repo's name. See the README for every knob.
"""

from clone.workflow.dag_factory import build_fleet_dag, schedule_from_env

dag = build_fleet_dag(schedule=schedule_from_env(), doc_md=__doc__)
