"""Setup, checks and the baseline on real ecosystem projects built here, installing from PyPI and npm.

Each project is a git clone laid out as Clone lays out workspaces (``<ws>/repos/<name>``, env in
``<ws>/envs/<name>``). For each: the detected setup, the detected checks, the verdict on healthy code
(green, judged against the baseline) and on broken code (a regression), and a second setup that is cached.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clone.checks import repo_setup
from clone.checks import verify
from tests.repos import git

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
TIMINGS: dict[str, dict[str, float]] = {}
TOOLS = ("poetry", "tox", "pre-commit")


def _uv() -> str:
    for candidate in (shutil.which("uv"), ROOT / ".venv" / "bin" / "uv", ROOT / ".cache" / "uv-venv" / "bin" / "uv"):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    pytest.skip("uv is neither on PATH nor bootstrapped by `make install` (.cache/uv-venv)")


@pytest.fixture(scope="session")
def tools_path() -> str:
    """PATH with uv (and a tools venv under .cache/ for poetry) in front; nothing assumed on PATH."""
    uv = _uv()
    tools = ROOT / ".cache" / "verify-tools"
    if not all((tools / "bin" / t).is_file() for t in TOOLS):
        subprocess.run([uv, "venv", "-q", "--allow-existing", str(tools)], check=True)
        subprocess.run([uv, "pip", "install", "-q", "--python", str(tools / "bin" / "python"), "poetry==2.1.3",
                        "tox==4.23.2", "pre-commit==4.0.1"], check=True)
    # The tools venv's own bin is last: poetry is found there, but its python never shadows the repo's.
    poetry_only = ROOT / ".cache" / "verify-tools-bin"
    poetry_only.mkdir(parents=True, exist_ok=True)
    for tool in TOOLS:
        if not (poetry_only / tool).exists():
            (poetry_only / tool).symlink_to(tools / "bin" / tool)
    return os.pathsep.join((str(Path(uv).parent), str(poetry_only), os.environ.get("PATH", "")))


def make_repo(tmp_path: Path, name: str, files: dict[str, str], prepare: list[list[str]] = (),
              path: str = "") -> Path:
    """A committed git repo at ``<ws>/repos/<name>``; ``prepare`` commands (e.g. making a lock) run first."""
    workdir = tmp_path / "ws" / "repos" / name
    for rel, text in files.items():
        (workdir / rel).parent.mkdir(parents=True, exist_ok=True)
        (workdir / rel).write_text(text)
    env = {**os.environ, "PATH": path or os.environ["PATH"]}
    for argv in prepare:
        subprocess.run(argv, cwd=workdir, env=env, check=True, capture_output=True, timeout=300)
    shutil.rmtree(workdir / "node_modules", ignore_errors=True)
    shutil.rmtree(workdir / ".venv", ignore_errors=True)
    git(workdir, "init", "-q", "-b", "main")
    (workdir / ".gitignore").write_text("node_modules/\n.venv/\n__pycache__/\ntarget/\n")
    git(workdir, "add", "-A")
    git(workdir, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "initial")
    return workdir


def judge(workdir: Path, path: str, breakage: dict[str, str], network: bool = False) -> dict:
    """Set up, detect, baseline, then judge healthy code and ``breakage``; also time a cached setup.
    ``network``: the checks may use the network (repos.yaml ``checks_network: true``)."""
    env = repo_setup.setup_env(base={**os.environ, "PATH": path})
    steps = repo_setup.steps_for(None, workdir, path)
    started = time.monotonic()
    first = repo_setup.run_setup(workdir, steps, timeout_seconds=600, env=env)
    cold = time.monotonic() - started
    assert first.status in ("done", "none"), first
    checks = verify.detect_checks(workdir)
    check_env = verify.default_env(base={**os.environ, "PATH": path})
    sha = git(workdir, "rev-parse", "HEAD").strip()
    base = verify.baseline(workdir, checks, sha, timeout_seconds=300, env=check_env, network=network)
    healthy = verify.judge(base, verify.run_checks(workdir, checks, timeout_seconds=300, env=check_env,
                                                   network=network))
    for rel, text in breakage.items():
        (workdir / rel).write_text(text)
    broken = verify.judge(base, verify.run_checks(workdir, checks, timeout_seconds=300, env=check_env,
                                                  network=network))
    git(workdir, "checkout", "--", ".")
    started = time.monotonic()
    again = repo_setup.run_setup(workdir, repo_setup.steps_for(None, workdir, path), timeout_seconds=600, env=env)
    cached = time.monotonic() - started
    TIMINGS[workdir.name] = {"cold": round(cold, 2), "cached": round(cached, 3)}
    print(f"\nFIXTURE {workdir.name}: setup {[s.command for s in steps]} checks {[c.command for c in checks]} "
          f"healthy={healthy.label} broken={broken.label} cold={cold:.2f}s cached={cached:.3f}s")
    return {"steps": [s.command for s in steps], "checks": [c.command for c in checks], "base": base,
            "healthy": healthy, "broken": broken, "again": again}


CALC_TEST = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
CALC = "def add(a, b):\n    return a + b\n"
CALC_BROKEN = {"src/calc/__init__.py": "def add(a, b):\n    return a - b\n"}


def test_uv_project(tmp_path, tools_path):
    workdir = make_repo(tmp_path, "uvproj", {
        "pyproject.toml": '[project]\nname = "calc"\nversion = "0.1"\nrequires-python = ">=3.10"\n'
                          '[dependency-groups]\ndev = ["pytest"]\n'
                          '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'
                          '[tool.pytest.ini_options]\naddopts = "-q"\n',
        "src/calc/__init__.py": CALC, "tests/test_calc.py": CALC_TEST,
    }, [[_uv(), "lock", "-q"]], tools_path)
    out = judge(workdir, tools_path, CALC_BROKEN)
    assert out["steps"] == ["uv sync --locked"]
    assert out["checks"] == ["python -m pytest -q"]
    assert out["healthy"].label == "passed"
    assert [r.name for r in out["broken"].regressions] == ["test"]
    assert out["again"].status == "cached"
    assert not (workdir / ".venv").exists()  # the env is under the workspace, not in the work tree


def test_plain_pyproject_whose_package_shadows_one_the_worker_has(tmp_path, tools_path):
    """A local package named ``yaml`` (src layout): the worker's Python imports PyYAML instead."""
    import yaml as worker_yaml  # the worker really has it: this is what would shadow the repo's code

    assert hasattr(worker_yaml, "safe_load")
    workdir = make_repo(tmp_path, "shadow", {
        "pyproject.toml": '[project]\nname = "local-yaml"\nversion = "0.1"\n'
                          '[project.optional-dependencies]\ntest = ["pytest"]\n'
                          '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n'
                          '[tool.setuptools.packages.find]\nwhere = ["src"]\n',
        "src/yaml/__init__.py": "def answer():\n    return 42\n",
        "tests/test_answer.py": "import yaml\n\n\ndef test_answer():\n    assert yaml.answer() == 42\n",
    }, path=tools_path)
    out = judge(workdir, tools_path, {"src/yaml/__init__.py": "def answer():\n    return 41\n"})
    assert out["steps"][1] == ("uv pip install --python " + str(tmp_path / "ws/envs/shadow/venv/bin/python")
                               + " -e '.[test]'")
    assert out["healthy"].label == "passed" and [r.name for r in out["broken"].regressions] == ["test"]
    # The worker's own Python would have judged the healthy code red (it imports PyYAML): the old way was wrong.
    worker = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=workdir,
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ""}, timeout=120)
    assert worker.returncode != 0 and "answer" in worker.stdout


def test_poetry_project(tmp_path, tools_path):
    workdir = make_repo(tmp_path, "poetryproj", {
        "pyproject.toml": '[tool.poetry]\nname = "calc"\nversion = "0.1.0"\ndescription = ""\nauthors = ["t <t@t>"]\n'
                          'packages = [{include = "calc", from = "src"}]\n'
                          '[tool.poetry.dependencies]\npython = ">=3.10"\n'
                          '[tool.poetry.group.dev.dependencies]\npytest = "*"\n'
                          '[build-system]\nrequires = ["poetry-core"]\nbuild-backend = "poetry.core.masonry.api"\n'
                          '[tool.pytest.ini_options]\naddopts = "-q"\n',
        "src/calc/__init__.py": CALC, "tests/test_calc.py": CALC_TEST,
    }, [["poetry", "lock", "--no-interaction"]], tools_path)
    out = judge(workdir, tools_path, CALC_BROKEN)
    assert out["steps"][-1] == "poetry install --no-interaction"
    assert out["healthy"].label == "passed" and [r.name for r in out["broken"].regressions] == ["test"]
    assert out["again"].status == "cached"


def test_npm_with_dev_dependencies(tmp_path, tools_path):
    workdir = make_repo(tmp_path, "npmproj", {
        "package.json": json.dumps({"name": "npmproj", "version": "1.0.0", "private": True,
                                    "scripts": {"lint": "semver 1.2.3", "test": "node test.js"},
                                    "devDependencies": {"semver": "7.6.3"}}),
        "index.js": "module.exports = (a, b) => a + b;\n",
        "test.js": "const semver = require('semver');\nconst add = require('./index');\n"
                   "if (!semver.valid('1.2.3') || add(2, 3) !== 5) { console.error('FAIL'); process.exit(1); }\n",
    }, [["npm", "install", "--no-audit", "--no-fund", "--silent"]], tools_path)
    out = judge(workdir, tools_path, {"index.js": "module.exports = (a, b) => a - b;\n"})
    assert out["steps"] == ["npm ci"] and out["checks"] == ["npm run lint", "npm test"]
    assert [r.ok for r in out["base"]] == [True, True]  # both need node_modules (.bin/semver, require)
    assert out["healthy"].label == "passed" and [r.name for r in out["broken"].regressions] == ["test"]
    assert out["again"].status == "cached"
    assert "node_modules" not in git(workdir, "status", "--porcelain")


def test_makefile_with_an_init_target(tmp_path, tools_path):
    workdir = make_repo(tmp_path, "makeproj", {
        "requirements.txt": "pytest\n",
        "Makefile": "init:\n\tpip install -q -r requirements.txt\ntest:\n\tpython -m pytest -q\n",
        "calc.py": CALC, "tests/test_calc.py": CALC_TEST,
    }, path=tools_path)
    out = judge(workdir, tools_path, {"calc.py": "def add(a, b):\n    return a * b\n"})
    assert out["steps"][-1] == "make init" and out["checks"] == ["make test"]
    assert out["healthy"].label == "passed" and [r.name for r in out["broken"].regressions] == ["test"]
    assert out["again"].status == "cached"


def test_cargo_crate_without_dependencies_offline(tmp_path, tools_path):
    """crates.io is not reachable here: a crate with no dependencies (cargo fetch works offline)."""
    if not shutil.which("cargo"):
        pytest.skip("cargo is not installed")
    workdir = make_repo(tmp_path, "crate", {
        "Cargo.toml": '[package]\nname = "crate"\nversion = "0.1.0"\nedition = "2021"\n',
        "src/lib.rs": "pub fn add(a: i32, b: i32) -> i32 { a + b }\n"
                      "#[cfg(test)]\nmod t { #[test] fn add() { assert_eq!(super::add(2, 3), 5); } }\n",
    }, path=tools_path)
    out = judge(workdir, tools_path, {"src/lib.rs": "pub fn add(a: i32, b: i32) -> i32 { a - b }\n"
                                      "#[cfg(test)]\nmod t { #[test] fn add() { assert_eq!(super::add(2, 3), 5); } }\n"})
    assert out["steps"] == ["cargo fetch"] and out["checks"] == ["cargo test --offline", "cargo build --offline"]
    assert out["healthy"].label == "passed" and [r.name for r in out["broken"].regressions] == ["test"]


def test_tox_project(tmp_path, tools_path):
    workdir = make_repo(tmp_path, "toxproj", {
        "tox.ini": "[tox]\nenvlist = py\n\n[testenv]\nskip_install = true\ndeps = pytest\n"
                   "commands = python -m pytest -q\n",
        "calc.py": CALC, "tests/test_calc.py": CALC_TEST,
    }, path=tools_path)
    # tox installs each env's deps when the check runs: such a repo needs `checks_network: true`.
    out = judge(workdir, tools_path, {"calc.py": "def add(a, b):\n    return a * b\n"}, network=True)
    tox_dir = tmp_path / "ws" / "envs" / "toxproj" / "tox"
    assert out["checks"] == [f"tox run --skip-missing-interpreters true --workdir {tox_dir}"]
    assert out["healthy"].label == "passed" and [r.name for r in out["broken"].regressions] == ["test"]
    assert tox_dir.is_dir() and not (workdir / ".tox").exists()


def test_pre_commit_hooks_are_the_lint_check(tmp_path, tools_path):
    config = ("repos:\n  - repo: local\n    hooks:\n      - id: no-todo\n        name: no TODO\n"
              "        entry: '(?i)todo'\n        language: pygrep\n        files: \\.py$\n")
    workdir = make_repo(tmp_path, "precommit", {".pre-commit-config.yaml": config, "calc.py": CALC,
                                                "Makefile": "test:\n\ttrue\n"}, path=tools_path)
    out = judge(workdir, tools_path, {"calc.py": CALC + "# TODO: later\n"})
    assert out["steps"] == ["pre-commit install-hooks"]
    assert out["checks"] == ["pre-commit run --all-files --show-diff-on-failure", "make test"]
    assert out["healthy"].label == "passed" and [r.name for r in out["broken"].regressions] == ["lint"]
    assert (tmp_path / "ws" / "envs" / "precommit" / "pre-commit").is_dir()


CMAKE_CI = """\
name: ci
on: [push, pull_request]
jobs:
  windows:
    runs-on: windows-latest
    steps:
      - run: echo never picked
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - name: deps
        run: sudo apt-get install -y cmake
      - name: configure
        run: cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
      - name: build
        run: cmake --build build
      - name: test
        run: ctest --test-dir build --output-on-failure
      - name: upload
        run: echo ${{ secrets.TOKEN }}
"""
CALC_C = "int add(int a, int b) { return a + b; }\n"
CALC_TEST_C = "int add(int, int);\nint main(void) { return add(2, 3) == 5 ? 0 : 1; }\n"


def test_project_whose_checks_live_only_in_its_ci_workflow(tmp_path, tools_path):
    if not (shutil.which("cmake") and shutil.which("cc")):
        pytest.skip("cmake and a C compiler are needed")
    workdir = make_repo(tmp_path, "cmakeproj", {
        "CMakeLists.txt": "cmake_minimum_required(VERSION 3.10)\nproject(calc C)\nenable_testing()\n"
                          "add_executable(calc_test calc.c test.c)\nadd_test(NAME calc COMMAND calc_test)\n",
        "calc.c": CALC_C, "test.c": CALC_TEST_C, ".github/workflows/ci.yml": CMAKE_CI,
    }, path=tools_path)
    out = judge(workdir, tools_path, {"calc.c": "int add(int a, int b) { return a - b; }\n"})
    assert out["steps"] == [] and [c for c in out["checks"]] == [
        "bash -e -c 'cmake -S . -B build -DCMAKE_BUILD_TYPE=Release'", "bash -e -c 'cmake --build build'",
        "bash -e -c 'ctest --test-dir build --output-on-failure'"]
    assert out["healthy"].label == "passed"
    assert [r.name for r in out["broken"].regressions] == ["ci: test"]


def test_failed_setup_is_an_environment_failure(tmp_path, tools_path):
    workdir = make_repo(tmp_path, "badsetup", {"Makefile": "test:\n\ttrue\n"}, path=tools_path)
    steps = repo_setup.steps_from_config(["no-such-installer-xyz --all"])
    result = repo_setup.run_setup(workdir, steps, timeout_seconds=30,
                                  env=repo_setup.setup_env(base={"PATH": tools_path}))
    assert result.status == "failed" and "could not start 'no-such-installer-xyz'" in result.failed_step
    # Not cached: the next pass tries again.
    assert repo_setup.run_setup(workdir, steps, timeout_seconds=30,
                                env=repo_setup.setup_env(base={"PATH": tools_path})).status == "failed"
