"""The per-repo operators when the task before them returned nothing (a ``ci_wait`` skipped for want of a
GitHub mapping, say): they are still labelled with the repo's name and say why they skip.

README, "The clone_fleet DAG": every per-repo task instance is labelled with its repo's name; in direct mode
``land`` skips because the push was the landing."""

from __future__ import annotations

import jinja2
import pytest
from airflow.sdk.exceptions import AirflowSkipException

from clone.operators.autofix import CloneAutofixOperator
from clone.operators.ci import REPO_LABEL
from clone.operators.land import CloneLandOperator
from clone.work.chain import ChainResult

ENTRY = {"name": "app", "path": "/src/app"}


def pushed(**fields):
    base = {"repo": "app", "workdir": "/w", "branch": "main", "base_sha": "a" * 40, "head_sha": "b" * 40,
            "has_remote": True, "github": None, "push_mode": "direct", "run_id": "run", "changed": True,
            "entry": {}, "pushed": True, "pushed_sha": "b" * 40, "push_branch": "main"}
    return ChainResult.from_json({**base, **fields}).to_json()


def grid_label(task) -> str:
    return jinja2.Environment().from_string(REPO_LABEL).render(task=task)


def test_land_after_a_skipped_ci_wait_in_direct_mode_says_the_push_was_the_landing():
    land = CloneLandOperator(task_id="land", fixed=None, checked=None, pushed=pushed(), entry=ENTRY)
    assert grid_label(land) == "app"
    context: dict = {}
    with pytest.raises(AirflowSkipException, match=r"^app: direct mode: the push was the landing$"):
        land.execute(context)
    assert context["clone_repo"] == "app"


def test_land_in_gated_mode_without_a_ci_verdict_keeps_the_work_branch():
    land = CloneLandOperator(task_id="land", fixed=None, checked=None, entry=ENTRY,
                             pushed=pushed(push_mode="gated", push_branch="clone/run-app"))
    with pytest.raises(AirflowSkipException, match=r"no CI verdict .*the work stays on clone/run-app"):
        land.execute({})


def test_land_and_autofix_with_nothing_before_them_are_labelled_from_the_entry():
    land = CloneLandOperator(task_id="land", fixed=None, checked=None, pushed=None, entry=ENTRY)
    fix = CloneAutofixOperator(task_id="autofix", ci_result=None, entry=ENTRY)
    for task, words in ((land, "nothing to land: the chain stopped before the push"),
                        (fix, "no CI verdict")):
        assert grid_label(task) == "app"
        context: dict = {}
        with pytest.raises(AirflowSkipException, match=words):
            task.execute(context)
        assert context["clone_repo"] == "app"
    # Without the entry there was nothing to read: the label was empty (the grid then shows nothing).
    assert grid_label(CloneLandOperator(task_id="land", fixed=None, checked=None)) == ""
