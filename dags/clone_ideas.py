"""
### clone_ideas

The Airflow DAG that turns one-line ideas in `ideas.yaml` into private GitHub repos in the fleet.

**intake** (read `ideas.yaml`, report bad entries; nothing at all when `IDEA_BOOTSTRAP_ENABLED=0`) ->
for each NEW or TRIAGED idea (and BLOCKED ones due for a retry), in parallel:
**triage** (a safe `repo_name`, a free target under `CLONE_CODE_ROOT`) -> **bootstrap** (`git init`,
the agent with the incubator prompt, pool `clone_agent`) -> **publish** (private repo through
`github_default`, push main) -> **enrol** (repos.yaml; the idea is ACTIVE) -> **summary**.

A failing step marks its idea BLOCKED with a `last_error`; the next run continues where it stopped.
Each mapped instance is labelled with its idea id. See the README for the file format and every knob.
"""

from clone.workflow.ideas_dag import build_ideas_dag, ideas_schedule_from_env

dag = build_ideas_dag(schedule=ideas_schedule_from_env(), doc_md=__doc__)
