"""Small real projects of each ecosystem, built here with their normal clients (PyPI, npm, a local Go
module proxy), and the run Clone does on them: setup, detected checks, baseline, verdicts.

Used by tests/checks/test_verify_ecosystems.py (which asserts on each) and bench/verify_fixtures.py (which
prints the table). Each project is a git clone laid out as Clone lays out workspaces (``<ws>/repos/<name>``,
its env in ``<ws>/envs/<name>``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from clone.checks import repo_setup
from clone.checks import verify
from tests.goproxy import go_env
from tests.repos import git
from tests.toolchains import Missing, find_uv, tools_path  # noqa: F401 (re-exported)

def make_repo(base: Path, name: str, files: dict[str, str], prepare: list[list[str]] = (), path: str = "",
              env: dict[str, str] | None = None) -> Path:
    """A committed git repo at ``<base>/ws/repos/<name>``; ``prepare`` commands (e.g. making a lock) run first."""
    workdir = base / "ws" / "repos" / name
    for rel, text in files.items():
        (workdir / rel).parent.mkdir(parents=True, exist_ok=True)
        (workdir / rel).write_text(text)
    run_env = {**os.environ, "PATH": path or os.environ["PATH"], **(env or {})}
    for argv in prepare:
        subprocess.run(argv, cwd=workdir, env=run_env, check=True, capture_output=True, timeout=300)
    shutil.rmtree(workdir / "node_modules", ignore_errors=True)
    shutil.rmtree(workdir / ".venv", ignore_errors=True)
    git(workdir, "init", "-q", "-b", "main")
    (workdir / ".gitignore").write_text("node_modules/\n.venv/\n__pycache__/\ntarget/\n")
    git(workdir, "add", "-A")
    git(workdir, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "initial")
    return workdir


@dataclasses.dataclass
class Outcome:
    """What Clone made of one fixture."""

    steps: list[str]
    checks: list[str]
    base: list[verify.CheckResult]
    healthy: verify.Verdict
    broken: verify.Verdict
    again: repo_setup.SetupResult
    cold: float
    cached: float


def judge(workdir: Path, path: str, breakage: dict[str, str], extra_env: dict[str, str] | None = None) -> Outcome:
    """Set up, detect, baseline, then judge healthy code and ``breakage``; also time a cached setup."""
    base_env = {**os.environ, "PATH": path, **(extra_env or {})}
    env = repo_setup.setup_env(base=base_env)
    steps = repo_setup.steps_for(None, workdir, path)
    started = time.monotonic()
    first = repo_setup.run_setup(workdir, steps, timeout_seconds=600, env=env)
    cold = time.monotonic() - started
    assert first.status in ("done", "none"), first
    checks = verify.detect_checks(workdir)
    check_env = verify.default_env(base=base_env)
    sha = git(workdir, "rev-parse", "HEAD").strip()
    base = verify.baseline(workdir, checks, sha, timeout_seconds=300, env=check_env)
    healthy = verify.judge(base, verify.run_checks(workdir, checks, timeout_seconds=300, env=check_env))
    for rel, text in breakage.items():
        (workdir / rel).write_text(text)
    broken = verify.judge(base, verify.run_checks(workdir, checks, timeout_seconds=300, env=check_env))
    # As a pass does after the baseline: back to the commit, untracked output (not ignored) removed.
    git(workdir, "reset", "--quiet", "--hard", sha)
    git(workdir, "clean", "-ffd", "--quiet")
    started = time.monotonic()
    again = repo_setup.run_setup(workdir, repo_setup.steps_for(None, workdir, path), timeout_seconds=600, env=env)
    cached = time.monotonic() - started
    return Outcome([s.command for s in steps], [c.command for c in checks], base, healthy, broken, again,
                   round(cold, 2), round(cached, 3))


# -- the fixtures ----------------------------------------------------------------------------------

CALC_TEST = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
CALC = "def add(a, b):\n    return a + b\n"
CALC_BROKEN = {"src/calc/__init__.py": "def add(a, b):\n    return a - b\n"}
ROOT_CALC_BROKEN = {"calc.py": "def add(a, b):\n    return a * b\n"}


@dataclasses.dataclass(frozen=True)
class Fixture:
    """How to build one project (``build(base, path) -> (workdir, extra env)``) and how to break it."""

    name: str
    build: Callable[[Path, str], tuple[Path, dict[str, str]]]
    breakage: dict[str, str]
    needs: tuple[str, ...] = ()  # programs that must be on PATH


def _uv(base: Path, path: str):
    return make_repo(base, "uvproj", {
        "pyproject.toml": '[project]\nname = "calc"\nversion = "0.1"\nrequires-python = ">=3.10"\n'
                          '[dependency-groups]\ndev = ["pytest"]\n'
                          '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'
                          '[tool.pytest.ini_options]\naddopts = "-q"\n',
        "src/calc/__init__.py": CALC, "tests/test_calc.py": CALC_TEST,
    }, [[find_uv(), "lock", "-q"]], path), {}


def _shadow(base: Path, path: str):
    """A local package named ``yaml`` (src layout): the worker's Python would import PyYAML instead."""
    return make_repo(base, "shadow", {
        "pyproject.toml": '[project]\nname = "local-yaml"\nversion = "0.1"\n'
                          '[project.optional-dependencies]\ntest = ["pytest"]\n'
                          '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n'
                          '[tool.setuptools.packages.find]\nwhere = ["src"]\n',
        "src/yaml/__init__.py": "def answer():\n    return 42\n",
        "tests/test_answer.py": "import yaml\n\n\ndef test_answer():\n    assert yaml.answer() == 42\n",
    }, path=path), {}


def _poetry(base: Path, path: str):
    return make_repo(base, "poetryproj", {
        "pyproject.toml": '[tool.poetry]\nname = "calc"\nversion = "0.1.0"\ndescription = ""\nauthors = ["t <t@t>"]\n'
                          'packages = [{include = "calc", from = "src"}]\n'
                          '[tool.poetry.dependencies]\npython = ">=3.10"\n'
                          '[tool.poetry.group.dev.dependencies]\npytest = "*"\n'
                          '[build-system]\nrequires = ["poetry-core"]\nbuild-backend = "poetry.core.masonry.api"\n'
                          '[tool.pytest.ini_options]\naddopts = "-q"\n',
        "src/calc/__init__.py": CALC, "tests/test_calc.py": CALC_TEST,
    }, [["poetry", "lock", "--no-interaction"]], path), {}


def _tox(base: Path, path: str):
    return make_repo(base, "toxproj", {
        "tox.ini": "[tox]\nenvlist = py\n\n[testenv]\nskip_install = true\ndeps = pytest\n"
                   "commands = python -m pytest -q\n",
        "calc.py": CALC, "tests/test_calc.py": CALC_TEST,
    }, path=path), {}


NOXFILE = """\
import nox


@nox.session
def tests(session):
    session.install("pytest")
    session.run("python", "-m", "pytest", "-q")


@nox.session(name="lint")
def lint_code(session):
    session.install("pyflakes")
    session.run("python", "-m", "pyflakes", "calc.py")


@nox.session
def format(session):  # rewrites files: never a check
    session.run("python", "-c", "raise SystemExit('format must not run')")
"""


def _nox(base: Path, path: str):
    return make_repo(base, "noxproj", {"noxfile.py": NOXFILE, "calc.py": CALC, "tests/test_calc.py": CALC_TEST},
                     path=path), {}


def _npm(base: Path, path: str):
    return make_repo(base, "npmproj", {
        "package.json": json.dumps({"name": "npmproj", "version": "1.0.0", "private": True,
                                    "scripts": {"lint": "semver 1.2.3", "test": "node test.js"},
                                    "devDependencies": {"semver": "7.6.3"}}),
        "index.js": "module.exports = (a, b) => a + b;\n",
        "test.js": "const semver = require('semver');\nconst add = require('./index');\n"
                   "if (!semver.valid('1.2.3') || add(2, 3) !== 5) { console.error('FAIL'); process.exit(1); }\n",
    }, [["npm", "install", "--no-audit", "--no-fund", "--silent"]], path), {}


def _go(base: Path, path: str):
    env = go_env(base)
    workdir = make_repo(base, "goproj", {
        "go.mod": "module example.com/app\n\ngo 1.19\n\nrequire example.com/greet v1.0.0\n",
        "app.go": 'package app\n\nimport "example.com/greet"\n\nfunc Hello() string { return greet.Greet("go") }\n',
        "app_test.go": 'package app\n\nimport "testing"\n\nfunc TestHello(t *testing.T) {\n'
                       '\tif got := Hello(); got != "hello, go" {\n\t\tt.Fatalf("got %q", got)\n\t}\n}\n',
    }, [["go", "mod", "tidy"]], path, env)
    # Cold for setup: an empty module cache (writable thanks to -modcacherw) and build cache.
    shutil.rmtree(env["GOMODCACHE"])
    shutil.rmtree(env["GOCACHE"], ignore_errors=True)
    assert not Path(env["GOMODCACHE"]).exists()
    return workdir, env


def _make_init(base: Path, path: str):
    return make_repo(base, "makeproj", {
        "requirements.txt": "pytest\n",
        "Makefile": "init:\n\tpip install -q -r requirements.txt\ntest:\n\tpython -m pytest -q\n",
        "calc.py": CALC, "tests/test_calc.py": CALC_TEST,
    }, path=path), {}


def _red_baseline(base: Path, path: str):
    """lint (pyflakes) is red before any agent: an unused import in the untouched code."""
    return make_repo(base, "redbase", {
        "requirements.txt": "pytest\npyflakes\n",
        "Makefile": "init:\n\tpip install -q -r requirements.txt\nlint:\n\tpython -m pyflakes calc.py\n"
                    "test:\n\tpython -m pytest -q\n",
        "calc.py": "import os\n\n\n" + CALC, "tests/test_calc.py": CALC_TEST,
    }, path=path), {}


def _cargo(base: Path, path: str):
    """crates.io is not reachable here: a crate with no dependencies (cargo fetch works offline)."""
    return make_repo(base, "crate", {
        "Cargo.toml": '[package]\nname = "crate"\nversion = "0.1.0"\nedition = "2021"\n', "src/lib.rs": RUST,
    }, path=path), {}


RUST = ("pub fn add(a: i32, b: i32) -> i32 { a + b }\n"
        "#[cfg(test)]\nmod t { #[test] fn add() { assert_eq!(super::add(2, 3), 5); } }\n")
PRE_COMMIT = ("repos:\n  - repo: local\n    hooks:\n      - id: no-todo\n        name: no TODO\n"
              "        entry: '(?i)todo'\n        language: pygrep\n        files: \\.py$\n")


def _pre_commit(base: Path, path: str):
    return make_repo(base, "precommit", {".pre-commit-config.yaml": PRE_COMMIT, "calc.py": CALC,
                                         "Makefile": "test:\n\ttrue\n"}, path=path), {}


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


def _cmake(base: Path, path: str):
    return make_repo(base, "cmakeproj", {
        "CMakeLists.txt": "cmake_minimum_required(VERSION 3.10)\nproject(calc C)\nenable_testing()\n"
                          "add_executable(calc_test calc.c test.c)\nadd_test(NAME calc COMMAND calc_test)\n",
        "calc.c": "int add(int a, int b) { return a + b; }\n",
        "test.c": "int add(int, int);\nint main(void) { return add(2, 3) == 5 ? 0 : 1; }\n",
        ".github/workflows/ci.yml": CMAKE_CI,
    }, path=path), {}


FIXTURES = {f.name: f for f in (
    Fixture("uv", _uv, CALC_BROKEN),
    Fixture("poetry", _poetry, CALC_BROKEN),
    Fixture("tox", _tox, ROOT_CALC_BROKEN),
    Fixture("nox", _nox, ROOT_CALC_BROKEN),
    Fixture("plain pyproject (shadows PyYAML)", _shadow, {"src/yaml/__init__.py": "def answer():\n    return 41\n"}),
    Fixture("npm devDependencies", _npm, {"index.js": "module.exports = (a, b) => a - b;\n"}, ("npm",)),
    Fixture("Go with a dependency", _go, {"app.go": 'package app\n\nimport "example.com/greet"\n\n'
                                          'func Hello() string { return greet.Greet("og") }\n'}, ("go",)),
    Fixture("Makefile init", _make_init, ROOT_CALC_BROKEN),
    Fixture("pre-commit", _pre_commit, {"calc.py": CALC + "# TODO: later\n"}),
    Fixture("Cargo (offline)", _cargo, {"src/lib.rs": RUST.replace("a + b", "a - b")}, ("cargo",)),
    Fixture("CMake, CI workflow only", _cmake, {"calc.c": "int add(int a, int b) { return a - b; }\n"},
            ("cmake", "cc")),
    Fixture("red at baseline", _red_baseline, {"calc.py": "import os\n\n\ndef add(a, b):\n    return a * b\n"}),
)}


def run_fixture(name: str, base: Path, path: str) -> tuple[Path, Outcome]:
    """Build fixture ``name`` under ``base`` and judge it (raises Missing when a tool it needs is absent)."""
    fixture = FIXTURES[name]
    if missing := [p for p in fixture.needs if not shutil.which(p, path=path)]:
        raise Missing(f"{name} needs {', '.join(missing)} on PATH")
    workdir, env = fixture.build(base, path)
    return workdir, judge(workdir, path, fixture.breakage, env)
