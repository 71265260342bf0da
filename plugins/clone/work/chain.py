"""The chain result: what a repo's chain (agent_pass -> push -> ci_wait -> autofix -> land) has done so far,
handed from task to task through XCom as plain JSON. Each task returns a new :class:`ChainResult` made
with :meth:`ChainResult.but`; nothing extends an untyped dict.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from clone.errors import CloneError

PUSH_MODES = ("direct", "gated", "pr")


class ChainResultError(CloneError, ValueError):
    """A chain result that is not one (a field missing or of the wrong type); the message names the field."""


@dataclasses.dataclass(frozen=True)
class ChainResult:
    """One repo's chain so far. In XCom (``return_value`` of agent_pass, push, ci_wait, autofix, land) it is a
    JSON object with exactly these keys (readers such as the UI plugin may rely on this schema):

    * from ``agent_pass``: ``repo`` (str, the repos.yaml name), ``workdir`` (str, the workspace),
      ``branch`` (str, the repo's branch), ``base_sha`` / ``head_sha`` (str, the pass's base and its
      commit; equal when nothing was committed), ``has_remote`` (bool), ``github`` (str ``owner/name`` or
      null), ``push_mode`` (``direct`` | ``gated`` | ``pr``), ``run_id`` (str), ``changed`` (bool),
      ``entry`` (object, the repos.yaml entry), ``agent`` (object or null: ``agent``, ``ok``,
      ``exit_code``, ``duration``, ``last_message``, ``usage``...), ``tokens`` (int), ``verification``
      (str label), ``checks`` / ``baseline`` (lists of check results: ``name``, ``command``,
      ``exit_code``, ``duration``, ``ok``...), ``findings`` (list of guard findings), ``incidents``
      (list of str), ``backlog_before`` / ``backlog_after`` (``{"open": int, "done": int}``),
      ``created_docs`` (list of str), ``setup`` (object or null);
      ``pending_ref`` (str or null: ``refs/clone/pending/<run>/<repo>`` on the remote, holding ``head_sha``
      until push puts it on a branch; later tasks fetch commits from the remote, never from
      ``workdir``, which is only agent_pass's worker's cache clone);
    * from ``push``: ``pushed`` (bool), ``pushed_sha`` (str or null), ``push_branch`` (str or null: the
      branch pushed to; the work branch in gated/pr mode), ``pull`` (``{"number", "html_url"}`` or null);
    * from ``ci_wait`` / ``autofix``: ``ci`` (object or null: ``repo``, ``sha``, ``status`` =
      ``success`` | ``failure`` | ``no_ci`` | ..., ``message``, ``runs`` [{``id``, ``name``, ``status``,
      ``conclusion``, ``html_url``...}], ``echo``), ``autofix_attempts`` (int or null), ``flaky`` (bool);
    * from ``land``: ``landed_sha`` (str or null: the commit now on ``branch``, or the PR's merge).
    """

    repo: str
    workdir: str
    branch: str
    base_sha: str
    head_sha: str
    has_remote: bool
    github: str | None
    push_mode: str
    run_id: str
    changed: bool
    entry: dict[str, Any]
    agent: dict[str, Any] | None = None
    tokens: int = 0
    verification: str = "skipped"
    checks: list[Any] = dataclasses.field(default_factory=list)
    baseline: list[Any] = dataclasses.field(default_factory=list)
    findings: list[Any] = dataclasses.field(default_factory=list)
    incidents: list[Any] = dataclasses.field(default_factory=list)
    backlog_before: dict[str, Any] = dataclasses.field(default_factory=dict)
    backlog_after: dict[str, Any] = dataclasses.field(default_factory=dict)
    created_docs: list[Any] = dataclasses.field(default_factory=list)
    setup: dict[str, Any] | None = None
    pending_ref: str | None = None
    pushed: bool = False
    pushed_sha: str | None = None
    push_branch: str | None = None
    pull: dict[str, Any] | None = None
    ci: dict[str, Any] | None = None
    autofix_attempts: int | None = None
    flaky: bool = False
    landed_sha: str | None = None

    def __post_init__(self) -> None:
        if self.push_mode not in PUSH_MODES:
            raise ChainResultError(f"chain result for {self.repo!r}: field 'push_mode' must be one of "
                                   f"{', '.join(PUSH_MODES)}, not {self.push_mode!r}")

    def but(self, **changes: Any) -> ChainResult:
        """A copy with ``changes`` (validated like any other)."""
        return dataclasses.replace(self, **changes)

    @property
    def ci_status(self) -> str | None:
        return (self.ci or {}).get("status")

    @property
    def ci_sha(self) -> str | None:
        return (self.ci or {}).get("sha")

    @property
    def ci_runs(self) -> list[dict[str, Any]]:
        runs = (self.ci or {}).get("runs")
        return [run for run in runs if isinstance(run, dict)] if isinstance(runs, list) else []

    @property
    def remote_branch(self) -> str:
        """Where this chain's commits are on the remote: the work branch, else the repo's branch."""
        return self.push_branch or self.branch

    def to_json(self) -> dict[str, Any]:
        """The plain-JSON object stored in XCom (see the class docstring for its schema)."""
        data = dataclasses.asdict(self)
        json.dumps(data)  # fail here, naming nothing unserialisable downstream
        return data

    @classmethod
    def from_json(cls, data: Any) -> ChainResult:
        """A chain result from untrusted input: a dict, or the JSON text a trigger's XCom comes back as.
        Unknown keys, missing required fields and wrong types raise :class:`ChainResultError`."""
        if isinstance(data, (str, bytes)):
            try:
                data = json.loads(data)
            except ValueError as e:
                raise ChainResultError(f"chain result is not JSON: {e}") from e
        if isinstance(data, ChainResult):
            return data
        if not isinstance(data, Mapping):
            raise ChainResultError(f"chain result must be a JSON object, not {type(data).__name__}")
        name = data.get("repo", "?")
        unknown = sorted(set(data) - set(_FIELDS))
        if unknown:
            raise ChainResultError(f"chain result for {name!r}: unknown field(s) {', '.join(map(str, unknown))}")
        for field, (kinds, required) in _FIELDS.items():
            if field not in data:
                if required:
                    raise ChainResultError(f"chain result for {name!r}: field {field!r} is missing")
                continue
            value = data[field]
            if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
                raise ChainResultError(f"chain result for {name!r}: field {field!r} must be "
                                       f"{' or '.join(k.__name__ for k in kinds)}, not {type(value).__name__}")
        return cls(**dict(data))


_NONE = type(None)
#: annotation -> the JSON types it accepts
_ACCEPTS: dict[str, tuple[type, ...]] = {
    "str": (str,), "str | None": (str, _NONE), "bool": (bool,), "int": (int,), "int | None": (int, _NONE),
    "dict[str, Any]": (dict,), "dict[str, Any] | None": (dict, _NONE), "list[Any]": (list,),
}
#: field -> (accepted JSON types, required)
_FIELDS = {f.name: (_ACCEPTS[str(f.type)], f.default is dataclasses.MISSING
                    and f.default_factory is dataclasses.MISSING) for f in dataclasses.fields(ChainResult)}
