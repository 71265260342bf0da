"""Setup, checks and the baseline on real ecosystem projects built here (tests/ecosystems.py), installing
from PyPI, npm and a local Go module proxy through their normal clients.

For each: the detected setup, the detected checks, the verdict on healthy code (green, judged against the
baseline) and on broken code (a regression), and a second setup that is cached.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from clone.checks import repo_setup
from clone.checks import verify
from tests import ecosystems
from tests.ecosystems import make_repo
from tests.toolchains import ensure_program

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def tools_path() -> str:
    """PATH with uv, poetry, tox, pre-commit and nox in front (installed from PyPI on first use)."""
    try:
        return ecosystems.tools_path()
    except ecosystems.Missing as e:
        pytest.skip(str(e))


def run(name, tmp_path, path):
    try:
        workdir, out = ecosystems.run_fixture(name, tmp_path, path)
    except ecosystems.Missing as e:
        pytest.skip(str(e))
    print(f"\nFIXTURE {name}: setup {out.steps} checks {out.checks} healthy={out.healthy.label} "
          f"broken={out.broken.label} cold={out.cold:.2f}s cached={out.cached:.3f}s")
    return workdir, out


def regressions(verdict):
    return [r.name for r in verdict.regressions]


def test_uv_project(tmp_path, tools_path):
    workdir, out = run("uv", tmp_path, tools_path)
    assert out.steps == ["uv sync --locked"]
    assert out.checks == ["python -m pytest -q"]
    assert out.healthy.label == "passed"
    assert regressions(out.broken) == ["test"]
    assert out.again.status == "cached"
    assert not (workdir / ".venv").exists()  # the env is under the workspace, not in the work tree


def test_plain_pyproject_whose_package_shadows_one_the_worker_has(tmp_path, tools_path):
    """A local package named ``yaml`` (src layout): the worker's Python imports PyYAML instead."""
    import yaml as worker_yaml  # the worker really has it: this is what would shadow the repo's code

    assert hasattr(worker_yaml, "safe_load")
    workdir, out = run("plain pyproject (shadows PyYAML)", tmp_path, tools_path)
    assert out.steps[1] == ("uv pip install --python " + str(tmp_path / "ws/envs/shadow/venv/bin/python")
                            + " -e '.[test]'")
    assert out.healthy.label == "passed" and regressions(out.broken) == ["test"]
    # The worker's own Python would have judged the healthy code red (it imports PyYAML): the old way was wrong.
    worker = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=workdir,
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ""}, timeout=120)
    assert worker.returncode != 0 and "answer" in worker.stdout


def test_poetry_project(tmp_path, tools_path):
    _, out = run("poetry", tmp_path, tools_path)
    assert out.steps[-1] == "poetry install --no-interaction"
    assert out.healthy.label == "passed" and regressions(out.broken) == ["test"]
    assert out.again.status == "cached"


def test_npm_with_dev_dependencies(tmp_path, tools_path):
    workdir, out = run("npm devDependencies", tmp_path, tools_path)
    assert out.steps == ["npm ci"] and out.checks == ["npm run lint", "npm test"]
    assert [r.ok for r in out.base] == [True, True]  # both need node_modules (.bin/semver, require)
    assert out.healthy.label == "passed" and regressions(out.broken) == ["test"]
    assert out.again.status == "cached"
    assert "node_modules" not in ecosystems.git(workdir, "status", "--porcelain")


def test_makefile_with_an_init_target(tmp_path, tools_path):
    _, out = run("Makefile init", tmp_path, tools_path)
    assert out.steps[-1] == "make init" and out.checks == ["make test"]
    assert out.healthy.label == "passed" and regressions(out.broken) == ["test"]
    assert out.again.status == "cached"


def test_red_at_baseline_is_pre_existing_and_a_new_break_still_counts(tmp_path, tools_path):
    _, out = run("red at baseline", tmp_path, tools_path)
    assert out.checks == ["make lint", "make test"]
    assert [(r.name, r.ok, r.failure_kind) for r in out.base] == [("lint", False, "check"), ("test", True, None)]
    assert out.healthy.label == "passed (pre-existing red: lint)" and not out.healthy.regressions
    assert regressions(out.broken) == ["test"] and [r.name for r in out.broken.pre_existing] == ["lint"]


def test_cargo_crate_without_dependencies_offline(tmp_path, tools_path):
    """crates.io is not reachable here: a crate with no dependencies (cargo fetch works offline)."""
    _, out = run("Cargo (offline)", tmp_path, tools_path)
    assert out.steps == ["cargo fetch"] and out.checks == ["cargo test --offline", "cargo build --offline"]
    assert out.healthy.label == "passed" and regressions(out.broken) == ["test"]
    assert out.again.status == "cached"


def test_go_module_with_a_dependency_from_a_module_proxy(tmp_path, tools_path):
    """example.com/greet comes from a GOPROXY on disk (the real protocol over file://) through the setup's
    `go mod download`; the checks then run offline (GOPROXY=off) from the module cache it filled."""
    ensure_program("go", "golang-go")
    _, out = run("Go with a dependency", tmp_path, tools_path)
    assert out.steps == ["go mod download"]
    assert out.checks == ["go vet ./...", "go test ./...", "go build ./..."]
    assert [r.ok for r in out.base] == [True, True, True]
    assert (tmp_path / "gomodcache" / "example.com" / "greet@v1.0.0" / "greet.go").is_file()
    assert out.healthy.label == "passed" and regressions(out.broken) == ["test"]
    assert out.again.status == "cached"


def test_go_checks_without_setup_are_an_environment_failure(tmp_path, tools_path):
    """The same module with an empty module cache: red, and classified as the environment's, not a check's."""
    ensure_program("go", "golang-go")
    workdir, env = ecosystems.FIXTURES["Go with a dependency"].build(tmp_path, tools_path)
    checks = verify.detect_checks(workdir)
    [test] = [c for c in checks if c.name == "test"]
    [result] = verify.run_checks(workdir, [test], timeout_seconds=120,
                                 env=verify.default_env(base={**os.environ, "PATH": tools_path, **env}))
    assert not result.ok and "GOPROXY=off" in result.output_tail
    assert result.failure_kind == "environment"


def test_tox_project(tmp_path, tools_path):
    workdir, out = run("tox", tmp_path, tools_path)
    tox_dir = tmp_path / "ws" / "envs" / "toxproj" / "tox"
    assert out.steps[-1] == f"tox run --notest --skip-missing-interpreters true --workdir {tox_dir}"
    assert out.checks == [f"tox run --skip-missing-interpreters true --workdir {tox_dir}"]
    assert out.again.status == "cached"
    assert out.healthy.label == "passed" and regressions(out.broken) == ["test"]
    assert tox_dir.is_dir() and not (workdir / ".tox").exists()


def test_nox_sessions(tmp_path, tools_path):
    """Sessions found by parsing noxfile.py (never importing it); `format` rewrites files and is no check.
    Setup installs the sessions' deps (`--install-only`); the checks reuse them and install nothing (-R)."""
    workdir, out = run("nox", tmp_path, tools_path)
    nox_dir = tmp_path / "ws" / "envs" / "noxproj" / "nox"
    flags = f"--envdir {nox_dir} --no-error-on-missing-interpreters"
    assert out.steps[-1] == f"nox --install-only {flags} -s tests lint"
    assert out.checks == [f"nox -R {flags} -s lint", f"nox -R {flags} -s tests"]
    assert [r.ok for r in out.base] == [True, True]
    assert out.healthy.label == "passed" and regressions(out.broken) == ["test"]
    assert out.again.status == "cached"
    assert nox_dir.is_dir() and not (workdir / ".nox").exists()


def test_pre_commit_hooks_are_the_lint_check(tmp_path, tools_path):
    _, out = run("pre-commit", tmp_path, tools_path)
    assert out.steps == ["pre-commit install-hooks"]
    assert out.checks == ["pre-commit run --all-files --show-diff-on-failure", "make test"]
    assert out.healthy.label == "passed" and regressions(out.broken) == ["lint"]
    assert (tmp_path / "ws" / "envs" / "precommit" / "pre-commit").is_dir()


def test_project_whose_checks_live_only_in_its_ci_workflow(tmp_path, tools_path):
    _, out = run("CMake, CI workflow only", tmp_path, tools_path)
    assert out.steps == [] and out.checks == [
        "bash -e -c 'cmake -S . -B build -DCMAKE_BUILD_TYPE=Release'", "bash -e -c 'cmake --build build'",
        "bash -e -c 'ctest --test-dir build --output-on-failure'"]
    assert out.healthy.label == "passed"
    assert regressions(out.broken) == ["ci: test"]


def test_failed_setup_is_an_environment_failure(tmp_path, tools_path):
    workdir = make_repo(tmp_path, "badsetup", {"Makefile": "test:\n\ttrue\n"}, path=tools_path)
    steps = repo_setup.steps_from_config(["no-such-installer-xyz --all"])
    result = repo_setup.run_setup(workdir, steps, timeout_seconds=30,
                                  env=repo_setup.setup_env(base={"PATH": tools_path}))
    assert result.status == "failed" and "could not start 'no-such-installer-xyz'" in result.failed_step
    # Not cached: the next pass tries again.
    assert repo_setup.run_setup(workdir, steps, timeout_seconds=30,
                                env=repo_setup.setup_env(base={"PATH": tools_path})).status == "failed"
