"""Waiting for GitHub Actions on a pushed commit without holding a worker slot."""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import time
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from clone.util import runner
from clone.errors import CIFailed, ConfigError, PushConflict
from clone.github.api import GitHubApi
from clone.github.ci import CIWatch, poll
from clone.github.connection import endpoint_for
from clone.config.params import run_settings
from clone.config.settings import Settings
from clone.triggers.ci import VERDICTS, GitHubCITrigger
from clone.work.chain import ChainResult

log = logging.getLogger(__name__)

#: Where each mapped task's own input names its repo (or idea), as Jinja accessors from ``task``: a
#: ``@task``'s first positional argument (the repos.yaml entry's ``name``, the previous result's ``repo``,
#: the idea's ``id``), or the operators' chain result (decoded from their templated input) or that input,
#: else the repos.yaml entry the task group was mapped over (``entry``: the only input an operator has when
#: the task before it returned nothing, a skipped ``ci_wait`` say).
LABEL_INPUTS = (
    (".op_args", "[0]", ".repo"), (".op_args", "[0]", ".name"), (".op_args", "[0]", ".id"),
    (".chain_repo",), (".push_result", ".repo"), (".ci_result", ".repo"), (".entry", ".name"),
)


def _label_template(inputs: tuple[tuple[str, ...], ...]) -> str:
    """``clone_repo`` once :func:`label` set it, else the first of ``inputs`` the task's input has."""
    branches = ["{% if clone_repo is defined %}{{ clone_repo }}"]
    for steps in inputs:
        prefixes = ["task" + "".join(steps[:i]) for i in range(1, len(steps) + 1)]
        defined = " and ".join(f"{prefix} is defined" for prefix in prefixes)
        branches.append(f"{{% elif {defined} %}}{{{{ {prefixes[-1]} }}}}")
    return "".join(branches) + "{% endif %}"


#: Label for each mapped instance in the grid: the repo's name, from the moment the instance starts.
#: The Task SDK renders ``map_index_template`` once before ``execute`` (after the task's templated inputs,
#: and with them its mapped input, are rendered) and sends it to the API server at once; it renders it again
#: only when the task ends, and a deferral is not an end. So the label must come from the input, not only
#: from ``clone_repo``, which a task sets in its context while it runs: that one showed only once an
#: instance had finished, and a running or deferred instance showed its number.
REPO_LABEL = _label_template(LABEL_INPUTS)


def xcom_dict(value: Any) -> Any:
    """A chain result as pulled from XCom. A value a trigger pushed with ``TaskSuccessEvent`` is stored
    by Airflow 3.3's core ``TaskInstance.xcom_push`` as a JSON string, which the Task SDK hands back as
    that string; a value a task returned comes back decoded. Either way: the dict."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def label(context: Any, repo: str) -> None:
    """Name this mapped task instance after its repo (rendered by ``map_index_template`` when the task ends;
    :data:`REPO_LABEL` reads the same name from the task's input when it starts)."""
    context["clone_repo"] = repo


class ChainInput:
    """An operator whose templated input (the field named ``chain_field``) is the chain result so far."""

    chain_field = "push_result"

    @property
    def chain(self) -> ChainResult:
        """The input as a validated chain result (decoded afresh: the field is rendered at run time)."""
        return ChainResult.from_json(xcom_dict(getattr(self, self.chain_field)))

    @property
    def chain_repo(self) -> str:
        """The repo's name for the grid label; AttributeError (undefined to Jinja) while it is not known."""
        try:
            return self.chain.repo
        except Exception as e:  # noqa: BLE001 - not rendered yet, or not a chain result
            raise AttributeError("no chain result yet") from e


class CIWatchMixin:
    """Check CI once in the worker; if it is not done, defer to :class:`GitHubCITrigger`."""

    def on_kill(self) -> None:
        """A killed task takes its agent and check processes with it."""
        runner.kill_running()

    def watch_ci(self, settings: Settings, repo: str, sha: str, *, method_name: str,
                 echo: dict[str, Any] | None = None, check_first: bool = True,
                 end_task: dict[str, Any] | None = None) -> dict[str, Any]:
        """CI's verdict on ``sha`` now, or defer; ``method_name`` then gets ``event`` (with ``echo``).

        ``check_first=False`` defers at once: right after asking for a re-run, GitHub may still list
        the old, completed attempt, which must not be read as the verdict. With ``end_task`` the
        trigger ends the task itself (see :class:`GitHubCITrigger`) instead of resuming it here.
        """
        now = time.time()
        inline = triggers_run_inline()
        watch = CIWatch(repo=repo, sha=sha, deadline=now + settings.ci_timeout_minutes * 60, started=now,
                        poll_seconds=settings.ci_poll_seconds,
                        start_grace_seconds=settings.ci_start_grace_seconds,
                        settle_seconds=settings.ci_settle_seconds, echo=dict(echo or {}),
                        not_before=0.0 if (end_task is not None or inline) else now + settings.defer_settle_seconds)
        note = "re-run requested"
        if check_first:
            with GitHubApi(endpoint_for(settings.github_conn_id)) as api:
                result = poll(api, watch)
            if result.event is not None:
                return result.event
            note = result.note
        log.info("CI %s@%s: %s; deferring (poll every %.0fs, deadline in %.0f min%s)", repo, sha[:12],
                 note, settings.ci_poll_seconds, settings.ci_timeout_minutes,
                 "; the trigger ends this task with the verdict" if end_task is not None and not inline else "")
        self.defer(  # type: ignore[attr-defined]
            trigger=GitHubCITrigger(settings.github_conn_id, watch.to_dict(),
                                    end_task=None if inline else end_task),
            method_name=method_name,
            timeout=dt.timedelta(seconds=settings.ci_timeout_minutes * 60 + settings.defer_settle_seconds + 300),
        )
        raise AssertionError("unreachable: defer() raises")


def triggers_run_inline() -> bool:
    """True under ``airflow dags test``, which runs triggers in the task's process and resumes the task
    with whatever the trigger yielded (it cannot end a task from a trigger)."""
    try:
        from airflow.sdk.execution_time import task_runner
        from airflow.sdk.execution_time.supervisor import InProcessSupervisorComms
    except ImportError:  # pragma: no cover - another Task SDK layout
        return False
    return isinstance(getattr(task_runner, "SUPERVISOR_COMMS", None), InProcessSupervisorComms)


def final_failures(method):
    """Turn Clone's own verdicts (CI red, a bad config, a conflict) into failures Airflow won't retry."""

    @functools.wraps(method)
    def wrapper(self, context, *args, **kwargs):
        try:
            return method(self, context, *args, **kwargs)
        except (CIFailed, ConfigError, PushConflict) as e:
            raise AirflowFailException(str(e)) from e

    return wrapper


def log_ci_event(event: dict[str, Any]) -> None:
    log.info("CI %s@%s: %s — %s", event.get("repo"), str(event.get("sha"))[:12], event.get("status"),
             event.get("message"))
    for run in event.get("runs") or []:
        log.info("  run %s %r: %s/%s %s", run.get("id"), run.get("name"), run.get("status"),
                 run.get("conclusion"), run.get("html_url"))


class GitHubCIWaitOperator(ChainInput, CIWatchMixin, BaseOperator):
    """Wait for GitHub Actions on the commit the push task pushed; returns the chain result with ``ci``."""

    template_fields = ("push_result",)
    ui_color = "#e8f0ff"

    def __init__(self, *, push_result: Any, **kwargs: Any) -> None:
        kwargs.setdefault("map_index_template", REPO_LABEL)
        super().__init__(**kwargs)
        self.push_result = push_result

    def execute(self, context: Any) -> dict[str, Any]:
        result = self.chain
        label(context, result.repo)
        if not result.github:
            raise AirflowSkipException(f"{result.repo}: no GitHub mapping (set 'github: owner/name' in "
                                       "repos.yaml, or use a github.com remote)")
        settings = run_settings(context)
        event = self.watch_ci(settings, result.github, str(result.pushed_sha), method_name="execute_complete",
                              end_task=result.to_json())
        return self.execute_complete(context, event)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        """The verdict found by the worker's own first check (or, under ``dags test``, by the trigger)."""
        result = self.chain
        label(context, result.repo)
        log_ci_event(event)
        if event["status"] not in VERDICTS:
            raise AirflowFailException(f"{result.repo}: {event['message']}")
        return result.but(ci=event).to_json()
