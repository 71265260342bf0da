"""Local verification: detecting a repo's checks, running them for real, reporting the evidence."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from pathlib import Path

import pytest

from clone.checks import verify
from clone.errors import ConfigError
from clone.checks.verify import Check, CheckResult

NPM_ENV = (("npm_config_offline", "true"), ("npm_config_update_notifier", "false"))
ENV = {"PATH": os.environ["PATH"]}


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def detected(workdir: Path) -> list[tuple[str, tuple[str, ...], str]]:
    return [(c.name, c.argv, c.source) for c in verify.detect_checks(workdir)]


# -- detection ---------------------------------------------------------------------------------

def test_makefile_targets_are_parsed_from_rule_lines_only(tmp_path):
    write(tmp_path, {"Makefile": (
        ".PHONY: lint test build deploy\n"
        "VERSION := 1.0\n"
        "OPTS ::= -q\n"
        "URL = http://example.com:80/x\n"
        "define HELP\n"
        "test: not a rule inside define\n"
        "endef\n"
        "lint test : deps ## both in one rule\n"
        "\truff check .\n"
        "deploy:\n"
        "\t@echo build: this is a recipe, not a target\n"
    )})
    assert detected(tmp_path) == [
        ("lint", ("make", "lint"), "Makefile target lint"),
        ("test", ("make", "test"), "Makefile target test"),
    ]


def test_makefile_check_target_counts_as_test_and_gnumakefile_comes_first(tmp_path):
    write(tmp_path, {"GNUmakefile": "check:\n\ttrue\nbuild::\n\ttrue\n", "Makefile": "test:\n\ttrue\n"})
    assert detected(tmp_path) == [
        ("test", ("make", "check"), "GNUmakefile target check"),
        ("build", ("make", "build"), "GNUmakefile target build"),
    ]


def test_package_json_scripts(tmp_path):
    write(tmp_path, {"package.json": json.dumps(
        {"scripts": {"lint": "eslint .", "test": "jest", "build": "tsc", "deploy": "npm publish"}})})
    checks = verify.detect_checks(tmp_path)
    assert [(c.name, c.argv, c.source, c.env) for c in checks] == [
        ("lint", ("npm", "run", "lint"), "package.json script lint", NPM_ENV),
        ("test", ("npm", "test"), "package.json script test", NPM_ENV),
        ("build", ("npm", "run", "build"), "package.json script build", NPM_ENV),
    ]


def test_npm_default_test_placeholder_is_skipped_and_bad_json_ignored(tmp_path):
    placeholder = 'echo "Error: no test specified" && exit 1'
    write(tmp_path / "a", {"package.json": json.dumps({"scripts": {"test": placeholder, "build": "tsc"}})})
    assert detected(tmp_path / "a") == [("build", ("npm", "run", "build"), "package.json script build")]
    write(tmp_path / "b", {"package.json": "{not json"})
    assert detected(tmp_path / "b") == []


def test_makefile_target_wins_over_language_defaults_per_kind(tmp_path):
    write(tmp_path, {
        "Makefile": "test:\n\ttrue\n",
        "package.json": json.dumps({"scripts": {"lint": "eslint .", "test": "jest"}}),
        "go.mod": "module example.com/x\n",
    })
    assert detected(tmp_path) == [
        ("lint", ("npm", "run", "lint"), "package.json script lint"),
        ("test", ("make", "test"), "Makefile target test"),
        ("build", ("go", "build", "./..."), "go.mod"),
    ]


@pytest.mark.parametrize(("files", "source"), [
    ({"pyproject.toml": "[tool.pytest.ini_options]\n"}, "pyproject.toml [tool.pytest.ini_options]"),
    ({"pytest.ini": "[pytest]\n"}, "pytest.ini"),
    ({"tox.ini": "[tox]\n[pytest]\ntestpaths = t\n"}, "tox.ini [pytest]"),
    ({"setup.cfg": "[metadata]\nname = x\n[tool:pytest]\n"}, "setup.cfg [tool:pytest]"),
    ({"tests/unit/test_x.py": "def test(): pass\n"}, "tests/test_*.py"),
])
def test_python_pytest_detection_uses_the_running_interpreter(tmp_path, files, source):
    write(tmp_path, files)
    assert detected(tmp_path) == [("test", (sys.executable, "-m", "pytest", "-q"), source)]


def test_python_without_pytest_config_or_tests_is_not_a_test_suite(tmp_path):
    write(tmp_path, {"pyproject.toml": "[project]\nname = 'x'\n", "tox.ini": "[tox]\n",
                     "tests/conftest.py": ""})
    assert detected(tmp_path) == []


def test_malformed_pyproject_is_ignored_not_fatal(tmp_path):
    write(tmp_path, {"pyproject.toml": "[tool.ruff\n", "tests/test_a.py": ""})
    assert detected(tmp_path) == [("test", (sys.executable, "-m", "pytest", "-q"), "tests/test_*.py")]


def test_repo_venv_python_is_preferred(tmp_path):
    write(tmp_path, {"pytest.ini": "[pytest]\n", ".venv/bin/python": "#!/bin/sh\n"})
    assert detected(tmp_path) == [("test", (".venv/bin/python", "-m", "pytest", "-q"), "pytest.ini")]


def test_ruff_lint_only_when_ruff_is_on_path(tmp_path, monkeypatch):
    write(tmp_path / "repo", {"ruff.toml": "line-length = 100\n"})
    bin_dir = write(tmp_path / "bin", {"ruff": "#!/bin/sh\n"})
    (bin_dir / "ruff").chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert detected(tmp_path / "repo") == []
    monkeypatch.setenv("PATH", str(bin_dir))
    assert detected(tmp_path / "repo") == [("lint", ("ruff", "check", "."), "ruff config")]


def test_cargo_and_go_detection(tmp_path):
    write(tmp_path / "rust", {"Cargo.toml": "[package]\nname = 'x'\n"})
    assert detected(tmp_path / "rust") == [
        ("test", ("cargo", "test", "--offline"), "Cargo.toml"),
        ("build", ("cargo", "build", "--offline"), "Cargo.toml"),
    ]
    write(tmp_path / "go", {"go.mod": "module example.com/x\n"})
    checks = verify.detect_checks(tmp_path / "go")
    assert [(c.name, c.argv, c.source) for c in checks] == [
        ("lint", ("go", "vet", "./..."), "go.mod"),
        ("test", ("go", "test", "./..."), "go.mod"),
        ("build", ("go", "build", "./..."), "go.mod"),
    ]
    assert all(dict(c.env) == {"GOPROXY": "off", "GOTOOLCHAIN": "local"} for c in checks)


def test_nothing_to_detect(tmp_path):
    assert verify.detect_checks(tmp_path) == []
    assert verify.summarize([]) == "no checks detected"
    assert verify.failure_evidence([]) == ""


# -- repos.yaml `verify:` -------------------------------------------------------------------------

def test_config_commands_are_shell_split():
    checks = verify.checks_from_config(["make lint", "pytest -k 'not slow'"])
    assert checks == [
        Check("verify-1", ("make", "lint"), "repos.yaml verify[0]"),
        Check("verify-2", ("pytest", "-k", "not slow"), "repos.yaml verify[1]"),
    ]
    assert verify.checks_from_config([]) == []


@pytest.mark.parametrize(("commands", "message"), [
    (["unclosed 'quote"], "verify[0]: cannot split"),
    (["make test", "  "], "verify[1]: the command is empty"),
    (["make lint && make test"], "verify[0]: 'make lint && make test' uses shell syntax (&&)"),
    ([["make", "test"]], "verify[0]: expected a command string, got list"),
])
def test_bad_config_commands_name_the_entry(commands, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        verify.checks_from_config(commands)


# -- running -------------------------------------------------------------------------------------

MAKEFILE = (
    "lint:\n\t@echo lint is clean\n"
    "test:\n\t@echo running tests\n\t@echo 'assertion failed: expected 2, got 3' >&2\n\t@false\n"
    "build:\n\t@sleep 30\n"
)


def test_passing_and_failing_checks_with_output_tail(tmp_path):
    write(tmp_path, {"Makefile": MAKEFILE})
    lint, test, _ = verify.detect_checks(tmp_path)
    passed, failed = verify.run_checks(tmp_path, [lint, test], timeout_seconds=30, env=ENV)
    assert passed.ok and passed.exit_code == 0 and passed.output_tail == "lint is clean"
    assert not failed.ok and failed.exit_code == 2 and not failed.timed_out
    assert "running tests" in failed.output_tail
    assert "assertion failed: expected 2, got 3" in failed.output_tail  # stderr is in the tail too
    assert failed.to_dict() == {
        "name": "test", "command": "make test", "exit_code": 2, "duration": failed.duration,
        "output_tail": failed.output_tail, "timed_out": False, "source": "Makefile target test", "ok": False,
        "failure_kind": "check",
    }
    assert isinstance(failed.duration, float) and failed.duration == round(failed.duration, 1)
    assert verify.summarize([passed, failed]).splitlines() == [
        f"PASS lint `make lint` ({passed.duration:.1f}s)",
        f"FAIL test `make test` ({failed.duration:.1f}s) exit 2",
    ]
    evidence = verify.failure_evidence([passed, failed])
    assert "make lint" not in evidence
    assert evidence.startswith("### `make test` (test, from Makefile target test): exit code 2\n\n```text\n")
    assert "assertion failed: expected 2, got 3" in evidence and evidence.rstrip().endswith("```")


def test_tail_keeps_only_the_last_lines(tmp_path):
    check = verify.checks_from_config([f"{sys.executable} -c \"[print(i) for i in range(100)]\""])[0]
    [result] = verify.run_checks(tmp_path, [check], timeout_seconds=30, env=ENV, tail_lines=5)
    assert result.ok and result.output_tail.splitlines() == ["95", "96", "97", "98", "99"]


def test_timeout_kills_the_check(tmp_path):
    write(tmp_path, {"Makefile": MAKEFILE})
    build = verify.detect_checks(tmp_path)[2]
    started = time.monotonic()
    [result] = verify.run_checks(tmp_path, [build], timeout_seconds=1, env=ENV)
    assert time.monotonic() - started < 5
    assert result.timed_out and not result.ok
    assert verify.summarize([result]) == f"TIMEOUT build `make build` ({result.duration:.1f}s)"
    assert "timed out and was killed" in verify.failure_evidence([result])


def test_missing_program_is_a_failed_result_not_an_exception(tmp_path):
    check = Check("build", ("no-such-tool-xyz", "build"), "test")
    [result] = verify.run_checks(tmp_path, [check], timeout_seconds=5, env=ENV)
    assert result.exit_code is None and not result.ok and not result.timed_out
    assert "no-such-tool-xyz" in result.output_tail and "could not start" in result.output_tail
    assert verify.summarize([result]).endswith("could not start (environment)")
    assert result.failure_kind == "environment"


def test_real_pytest_suite_with_the_repo_venv_python(tmp_path):
    write(tmp_path, {
        "tests/test_ok.py": "def test_ok():\n    assert 1 + 1 == 2\n",
        ".venv/bin/python": f"#!/bin/sh\nexec {sys.executable} \"$@\"\n",
    })
    (tmp_path / ".venv/bin/python").chmod(0o755)
    [check] = verify.detect_checks(tmp_path)
    [result] = verify.run_checks(tmp_path, [check], timeout_seconds=60, env=ENV)
    assert result.ok, result.output_tail
    assert result.command == ".venv/bin/python -m pytest -q" and "1 passed" in result.output_tail
    assert not list(tmp_path.rglob("__pycache__"))  # PYTHONDONTWRITEBYTECODE keeps the tree clean


def test_secrets_are_masked_and_lines_logged(tmp_path, caplog, monkeypatch):
    token = "ghp_" + "a1B2" * 9
    monkeypatch.setenv("MY_SERVICE_PASSWORD", "hunter2-hunter2")
    check = verify.checks_from_config(
        [f"sh -c 'echo using {token}; echo pw=$MY_SERVICE_PASSWORD; echo done'"])[0]
    caplog.set_level(logging.INFO, logger="clone.checks.verify")
    env = verify.default_env(passthrough=("MY_SERVICE_PASSWORD",))
    [result] = verify.run_checks(tmp_path, [check], timeout_seconds=10, env=env)
    assert result.ok
    assert result.output_tail == "using ***\npw=***\ndone"
    logged = [r.getMessage() for r in caplog.records if r.name == "clone.checks.verify"]
    assert "[verify verify-1] using ***" in logged and "[verify verify-1] pw=***" in logged
    assert not any(token in line or "hunter2" in line for line in logged if line.startswith("[verify"))
    assert any(line.startswith("verify: 1/1 check(s) passed") for line in logged)


def test_default_env_is_an_allowlist_without_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_GITHUB_DEFAULT", "secret-conn")
    monkeypatch.setenv("GITHUB_TOKEN", "secret-token")
    monkeypatch.setenv("GH_TOKEN", "secret-token")
    monkeypatch.setenv("CLONE_WORKSPACE", "/nope")
    monkeypatch.setenv("KEEP_ME", "kept")
    monkeypatch.setenv("OPENAI_API_KEY", "model-key")
    monkeypatch.setenv("GOPATH", "/go")
    monkeypatch.delenv("CI", raising=False)
    script = ("echo ${AIRFLOW_CONN_GITHUB_DEFAULT:-no-conn} ${GITHUB_TOKEN:-no-gh} ${GH_TOKEN:-no-gh} "
              "${CLONE_WORKSPACE:-no-clone} ${KEEP_ME:-no-keep} ${OPENAI_API_KEY:-no-key} $GOPATH ci=$CI go=$GOPROXY")
    check = Check("env", ("sh", "-c", script), "test", env=(("GOPROXY", "off"),))
    [result] = verify.run_checks(tmp_path, [check], timeout_seconds=10)
    assert result.output_tail == "no-conn no-gh no-gh no-clone no-keep no-key /go ci=true go=off"
    [result] = verify.run_checks(tmp_path, [check], timeout_seconds=10,
                                 env=verify.default_env(passthrough=("KEEP_ME", "GITHUB_TOKEN")))
    assert result.output_tail.split()[:5] == ["no-conn", "no-gh", "no-gh", "no-clone", "kept"]


def test_no_checks_is_an_empty_result(tmp_path):
    assert verify.run_checks(tmp_path, [], timeout_seconds=10) == []


def test_config_check_runs_in_the_workdir(tmp_path):
    write(tmp_path, {"marker.txt": "here\n"})
    [result] = verify.run_checks(tmp_path, verify.checks_from_config(["cat marker.txt"]), timeout_seconds=10,
                                 env=ENV)
    assert result.ok and result.output_tail == "here"


# -- reporting -------------------------------------------------------------------------------------

def _result(name="test", exit_code=0, tail="", timed_out=False) -> CheckResult:
    return CheckResult(name, f"make {name}", exit_code, 1.3, tail, timed_out, f"Makefile target {name}")


def test_failure_evidence_fence_survives_backticks_in_output():
    evidence = verify.failure_evidence([_result(exit_code=1, tail="```\nnot the end\n```")])
    assert "````text\n```\nnot the end\n```\n````" in evidence


def test_checks_and_setup_keep_the_package_managers_settings_but_no_secrets():
    from clone.checks import repo_setup

    base = {"PATH": "/bin", "UV_INDEX_URL": "http://mirror/simple", "POETRY_HTTP_BASIC_X_USERNAME": "u",
            "PIP_INDEX_URL": "http://mirror/pip", "npm_config_registry": "http://mirror/npm", "GOPROXY": "direct",
            "GOFLAGS": "-mod=mod", "CARGO_NET_OFFLINE": "false", "OPENAI_API_KEY": "sk-x", "GITHUB_TOKEN": "t",
            "CLONE_WORKSPACE": "/ws", "AIRFLOW__CORE__FERNET_KEY": "k"}
    for env in (verify.default_env(base), repo_setup.setup_env(base)):
        assert {k for k in env if k != "CI"} == {
            "PATH", "UV_INDEX_URL", "POETRY_HTTP_BASIC_X_USERNAME", "PIP_INDEX_URL", "npm_config_registry",
            "GOPROXY", "GOFLAGS", "CARGO_NET_OFFLINE"}


def result(name, exit_code, tail="", command=None):
    return CheckResult(name, command or f"make {name}", exit_code, 0.1, tail, False, "test")


def test_failure_kinds_tell_the_environment_from_the_code():
    assert result("test", 0).failure_kind is None
    assert result("test", 1, "AssertionError: 1 != 2").failure_kind == "check"
    assert result("test", None, "could not start").failure_kind == "environment"
    assert result("lint", 127, "sh: 1: xo: not found").failure_kind == "environment"
    assert result("test", 1, "ModuleNotFoundError: No module named 'freezegun'").failure_kind == "environment"
    assert result("test", 5, "no tests ran", "python -m pytest -q").failure_kind == "environment"


def test_judge_blames_only_checks_green_at_baseline():
    base = [result("lint", 1), result("test", 0), result("build", 0)]
    verdict = verify.judge(base, [result("lint", 1), result("test", 2), result("build", 0)])
    assert [r.name for r in verdict.regressions] == ["test"] and [r.name for r in verdict.pre_existing] == ["lint"]
    assert verdict.label == "failed" and verdict.trusted == 2
    assert verify.judge(base, [result("lint", 1), result("test", 0), result("build", 0)]).label == \
        "passed (pre-existing red: lint)"
    assert verify.judge([result("test", 1)], [result("test", 1)]).label == \
        "unverified (every check was red before the agent)"
    assert verify.judge([], [result("test", 1)]).regressions  # no baseline: the check counts as green before


WORKFLOW = ("on:\n  pull_request:\njobs:\n  mac:\n    runs-on: macos-latest\n    steps: [{run: make mac}]\n"
            "  lin:\n    runs-on: [self-hosted, linux]\n    steps:\n      - run: pip install -e .\n"
            "      - {name: unit, run: pytest -q, working-directory: pkg}\n")


def test_ci_workflow_steps_are_checks_when_the_repo_declares_nothing_else(tmp_path):
    write(tmp_path / "a", {".github/workflows/ci.yml": WORKFLOW})
    assert detected(tmp_path / "a") == [
        ("ci: unit", ("bash", "-e", "-c", "cd pkg\npytest -q"), ".github/workflows/ci.yml job lin step 2")]
    write(tmp_path / "b", {".github/workflows/ci.yml": WORKFLOW, "Makefile": "test:\n\ttrue\n"})
    assert [c[1] for c in detected(tmp_path / "b")] == [("make", "test")]  # the repo's own entry point wins
    write(tmp_path / "c", {".github/workflows/ci.yml": WORKFLOW.replace("pull_request", "schedule")})
    assert detected(tmp_path / "c") == []  # not a push/PR workflow


def test_agents_md_commands_come_first(tmp_path):
    template = (Path(__file__).resolve().parents[2] / "include" / "templates" / "AGENTS.md").read_text()
    write(tmp_path / "a", {"AGENTS.md": template, "Makefile": "test:\n\ttrue\n"})
    assert detected(tmp_path / "a") == [("test", ("make", "test"), "Makefile target test")]  # _unknown_ is no command
    filled = template.replace("- Lint: _unknown_", "- Lint: `ruff check src`").replace(
        "- Test: _unknown_", "- **Test**: `pytest -q tests && echo ok` (about 2 s)").replace(
        "- Install: _unknown. Record the command once verified._", "- Install: `pip install -e .`")
    filled += "\n## Gotchas\n\n- Build: `not-a-command-section`\n"
    write(tmp_path / "b", {"AGENTS.md": filled, "Makefile": "test:\n\ttrue\nbuild:\n\ttrue\n"})
    assert detected(tmp_path / "b") == [
        ("lint", ("ruff", "check", "src"), "AGENTS.md Lint"),
        ("test", ("sh", "-c", "pytest -q tests && echo ok"), "AGENTS.md Test"),
        ("build", ("make", "build"), "Makefile target build"),
    ]


def test_setup_detection_per_ecosystem(tmp_path):
    from clone.checks import repo_setup

    repos = iter(range(100))

    def steps(files):
        workdir = write(tmp_path / "ws" / "repos" / f"r{next(repos)}", files)
        return [(s.argv[:3], s.source) for s in repo_setup.steps_for(None, workdir, "/nonexistent")]

    assert steps({"uv.lock": "", "pyproject.toml": "[project]\nname='x'\n"}) == [(("uv", "sync", "--locked"), "uv.lock")]
    assert steps({"package.json": "{}"}) == [(("npm", "install"), "package.json (no lock)")]
    assert steps({"package.json": "{}", "package-lock.json": "{}", "go.mod": "module x\n", "Cargo.toml": ""}) == [
        (("npm", "ci"), "package-lock.json"), (("go", "mod", "download"), "go.mod"),
        (("cargo", "fetch"), "Cargo.toml")]
    # No ecosystem manifest: the devcontainer's postCreateCommand, else a Makefile init/install/deps target.
    devcontainer = '{\n  // comments are allowed\n  "postCreateCommand": {"a": "make bootstrap", "b": ["echo", "hi"]}\n}'
    assert steps({".devcontainer/devcontainer.json": devcontainer, "Makefile": "init:\n\ttrue\n"}) == [
        (("sh", "-c", "make bootstrap"), ".devcontainer/devcontainer.json postCreateCommand"),
        (("echo", "hi"), ".devcontainer/devcontainer.json postCreateCommand")]
    assert steps({"Makefile": "deps:\n\ttrue\ninstall:\n\ttrue\n"}) == [(("make", "install"), "Makefile target install")]
    assert steps({"README.md": "hi"}) == []
    with pytest.raises(ConfigError, match=r"repos.yaml setup\[0\]: the command is empty"):
        repo_setup.steps_for(("",), tmp_path)
    assert repo_setup.steps_for((), tmp_path) == []  # setup: [] = none


def test_setup_cache_key_follows_the_manifests(tmp_path):
    from clone.checks import repo_setup

    write(tmp_path, {"package.json": "{}", "README.md": "a"})
    steps = repo_setup.steps_from_config(["npm ci"])
    key = repo_setup.cache_key(tmp_path, steps)
    write(tmp_path, {"README.md": "b"})
    assert repo_setup.cache_key(tmp_path, steps) == key  # not a manifest
    write(tmp_path, {"package.json": '{"name": "x"}'})
    assert repo_setup.cache_key(tmp_path, steps) != key
    assert repo_setup.cache_key(tmp_path, repo_setup.steps_from_config(["npm install"])) != \
        repo_setup.cache_key(tmp_path, steps)
