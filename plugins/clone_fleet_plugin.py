"""The Airflow plugin that adds the "Clone fleet" page to the Airflow UI (README "Clone fleet page").

The api-server mounts :func:`clone.ui.app.create_app` at ``/clone``; the UI's navigation gets a
"Clone fleet" entry that shows it inside Airflow's frame. The logic lives in ``clone.ui``.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from clone.ui.app import PREFIX, create_app


class CloneFleetPlugin(AirflowPlugin):
    """Clone's fleet page: one row per repo, charts, the ideas pipeline."""

    name = "clone_fleet"
    fastapi_apps = [{"app": create_app(), "url_prefix": PREFIX, "name": "Clone fleet"}]
    external_views = [{"name": "Clone fleet", "href": f"{PREFIX}/", "destination": "nav",
                       "url_route": "clone-fleet", "category": "browse"}]
