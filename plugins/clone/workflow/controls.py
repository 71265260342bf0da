"""Fleet-wide controls read at run time: the kill switch."""

from __future__ import annotations

PAUSE_VARIABLE = "clone_paused"
_TRUE = {"1", "true", "yes", "on"}


def fleet_paused() -> bool:
    """True when the Airflow Variable ``clone_paused`` is set to true (the fleet-wide kill switch)."""
    from airflow.sdk import Variable

    value = Variable.get(PAUSE_VARIABLE, default="false")
    return str(value).strip().lower() in _TRUE


def skip_if_paused(repo: str) -> None:
    """Skip the current task when the kill switch is on, saying how to turn it off."""
    from airflow.sdk.exceptions import AirflowSkipException

    if fleet_paused():
        raise AirflowSkipException(
            f"{repo}: the kill switch is on (Airflow Variable {PAUSE_VARIABLE}=true); no new agent work starts. "
            f"Set it to false to resume."
        )
