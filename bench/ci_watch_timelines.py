"""The CI timelines of ``bench/ci_watch.py`` and the fake GitHub API driven by them (virtual time)."""

from __future__ import annotations

import dataclasses

REPO = "acme/probe"
SHA = "c0ffee" + "0" * 34


@dataclasses.dataclass(frozen=True)
class Timeline:
    """When the CI run is listed, starts and concludes, in virtual seconds after the push."""

    name: str
    listed_at: float
    running_at: float
    done_at: float
    conclusion: str = "success"
    #: A second workflow (red) listed this long after the push, concluding ``late_ci_seconds`` later.
    late_listed_at: float | None = None
    late_ci_seconds: float = 30.0

    @property
    def all_done_at(self) -> float:
        if self.late_listed_at is None:
            return self.done_at
        return max(self.done_at, self.late_listed_at + self.late_ci_seconds)

    def status_at(self, t: float) -> str | None:
        if t < self.listed_at:
            return None
        if t < self.running_at:
            return "queued"
        return "in_progress" if t < self.done_at else "completed"


def fake_class():
    from tests.fakes.github_api import FakeGitHub, LateWorkflow

    class VirtualTimeGitHub(FakeGitHub):
        """The fake GitHub API with run states set only by :meth:`advance` (virtual time), never by polls."""

        def _settle(self, run) -> None:  # noqa: ANN001 - the fake's private run type
            pass

        def advance(self, timeline: Timeline, t: float) -> None:
            """Bring the run for ``SHA`` to its state at virtual time ``t`` (a change only on transitions)."""
            self._advance_late(timeline, t)
            wanted = timeline.status_at(t)
            current = self.run_for(REPO, SHA)
            if wanted is None or (current and current["status"] == wanted):
                return
            if wanted == "completed":
                self.set_run_state(REPO, SHA, "completed", timeline.conclusion)
            else:
                self.set_run_state(REPO, SHA, wanted)

        def _advance_late(self, timeline: Timeline, t: float) -> None:
            if timeline.late_listed_at is None or t < timeline.late_listed_at:
                return
            repo = self.repo(REPO)
            with self._lock:
                if not repo.late_runs:
                    self._create_run(repo, SHA, "main", LateWorkflow("Lint", ".github/workflows/lint.yml"))
                run = repo.late_runs[0]
                if t >= timeline.late_listed_at + timeline.late_ci_seconds and run.status != "completed":
                    self._complete(run, "failure")

    return VirtualTimeGitHub
