#!/usr/bin/env python
"""Scale benchmark: DAG parse time and discovery time for fleets of 100 and 1,000 repos.

    .venv/bin/python bench/fleet_scale.py                  # sizes 100 and 1000
    .venv/bin/python bench/fleet_scale.py --sizes 5,10 --repeats 1 --report-only   # a smoke run
    .venv/bin/python bench/fleet_scale.py --gitpython      # also discovery through GitPython

For each size it builds, in a temporary directory, a code root of real git checkouts
(a template repository copied, each copy given its own HEAD commit and date: loose commits
made with ``git commit-tree``, packed commits from ``git fast-import``, loose and packed
refs) plus the cases discovery must get right (a nested checkout, a checkout under
``node_modules`` and one in a hidden folder, a broken ``.git``, an empty repository, a
bare repository, a linked worktree, a symlink loop), and a ``repos.yaml`` listing the fleet.

It then measures

* **DAG parse**: the DAG files in ``dags/`` (``clone_fleet`` and the others) loaded by Airflow's
  ``DagBag`` in a fresh process per repetition with ``CLONE_REPOS_FILE`` pointing at the fleet
  (median; sizes interleaved after one uncounted warm-up), and the size of the serialized DAGs;
* **discovery**: ``clone.fleet.discover.discover`` against the bash version's way, ``find ROOT ...
  -name .git`` then ``git log -1 --format=%ct`` per checkout, with the same depth and skip
  rules; both must find the same checkouts with the same commit times. With ``--gitpython``, also
  the same walk reading each HEAD commit through GitPython (``GitDB`` and ``GitCmdObjectDB``), the
  library the hand-written reader has to beat to be kept (differences are marked DIFFER).

Targets (exit status 1 when missed): parse time at the largest size at most 1.5x the smallest,
and discovery at the largest size at least 2x faster than the baseline. Differing discovery
results always fail.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT / "plugins"))

from clone.fleet.discover import MAX_DEPTH, SKIP_DIRS, discover, iter_checkouts  # noqa: E402

PARSE_TARGET = 1.5
SPEEDUP_TARGET = 2.0
DAY = 86400
#: Commits with dates spread over two months, packed once in the template and shared by the copies.
PACKED_COMMITS = 64

GIT_ENV = {
    **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
    "GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "Bench", "GIT_COMMITTER_EMAIL": "bench@example.com",
    "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "LC_ALL": "C",
}


def git(cwd: Path, *args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> str:
    """Run git for building fixtures (raises with its output on failure)."""
    result = subprocess.run(["git", "-c", "init.defaultBranch=main", *args], cwd=cwd, input=stdin,
                            env={**GIT_ENV, **(env or {})}, capture_output=True, text=True, timeout=300)
    if result.returncode:
        raise RuntimeError(f"git {' '.join(args)} failed in {cwd}:\n{result.stdout}{result.stderr}")
    return result.stdout.strip()


# -- building fleets ----------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Template:
    path: Path
    tree: str
    initial: str
    packed: tuple[tuple[str, int], ...]  # (sha, committer time) of commits that live in a pack


def build_template(base: Path, now: int) -> Template:
    """One small repository: an initial commit (loose objects) and PACKED_COMMITS dated commits in a pack."""
    path = base / "template"
    path.mkdir(parents=True)
    git(path, "init", "--quiet", "--template=", "-b", "main")
    (path / "src").mkdir()
    (path / "README.md").write_text("# service\n")
    (path / "src" / "app.py").write_text("print('hello')\n")
    git(path, "add", "-A")
    old = f"@{now - 400 * DAY} +0000"
    git(path, "commit", "--quiet", "-m", "initial", env={"GIT_AUTHOR_DATE": old, "GIT_COMMITTER_DATE": old})
    initial = git(path, "rev-parse", "HEAD")
    tree = git(path, "rev-parse", "HEAD^{tree}")
    stream, dates = [], []
    for k in range(PACKED_COMMITS):
        when = now - int(k * 0.9 * DAY) - 1800
        dates.append(when)
        message = f"packed work {k}\n"
        stream.append(f"commit refs/bench/packed\nmark :{k + 1}\n"
                      f"committer Bench <bench@example.com> {when} +0000\n"
                      f"data {len(message)}\n{message}from {initial}\n\n")
    marks = base / "marks"
    git(path, "fast-import", "--quiet", f"--export-marks={marks}", stdin="".join(stream))
    by_mark = dict(line.split() for line in marks.read_text().splitlines())
    packed = tuple((by_mark[f":{k + 1}"], dates[k]) for k in range(PACKED_COMMITS))
    git(path, "update-ref", "-d", "refs/bench/packed")
    git(path, "pack-refs", "--all")  # refs/heads/main now lives in packed-refs only
    return Template(path, tree, initial, packed)


def _copy_file(src: str, dst: str) -> None:
    # Objects and packs are immutable in git: hard links keep a 1,000-repo fleet small and fast.
    if f"{os.sep}objects{os.sep}" in src:
        os.link(src, dst)
    else:
        shutil.copy2(src, dst)


def copy_template(template: Template, dest: Path) -> Path:
    shutil.copytree(template.path, dest, symlinks=True, copy_function=_copy_file)
    return dest


def _set_packed_ref(repo: Path, sha: str) -> None:
    (repo / ".git" / "packed-refs").write_text(f"# pack-refs with: peeled fully-peeled sorted \n"
                                               f"{sha} refs/heads/main\n")


def _set_loose_ref(repo: Path, sha: str) -> None:
    (repo / ".git" / "refs" / "heads" / "main").write_text(sha + "\n")


def fleet_member(root: Path, i: int) -> Path:
    """Most checkouts two levels down (org/repo), every tenth three levels down."""
    if i % 10 == 9:
        return root / f"group{i % 7}" / "team" / f"svc{i:04d}"
    return root / f"org{i % 25:02d}" / f"repo{i:04d}"


def make_member(template: Template, root: Path, i: int, now: int) -> Path:
    """Copy the template and give the copy its own HEAD commit (packed or loose; packed or loose ref)."""
    repo = copy_template(template, fleet_member(root, i))
    kind = i % 4
    if kind in (0, 1):
        sha, _ = template.packed[(i * 7) % PACKED_COMMITS]
        (_set_packed_ref if kind == 0 else _set_loose_ref)(repo, sha)
    else:
        when = f"@{now - ((i * 37) % 60) * DAY - (i % 24) * 3600} +0000"
        sha = git(repo, "commit-tree", template.tree, "-p", template.initial, "-m", f"work on repo {i}",
                  env={"GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when})
        _set_loose_ref(repo, sha)
    return repo


def add_edge_cases(template: Template, root: Path, first: Path) -> None:
    """Checkouts and non-checkouts that both discovery methods must treat the same way."""
    copy_template(template, first / "vendor" / "nested")  # inside a checkout: not a fleet member
    copy_template(template, root / "org00" / "node_modules" / "dep")  # dependency folder: skipped
    copy_template(template, root / ".hidden" / "repo")  # hidden folder: skipped
    (root / "broken" / ".git").mkdir(parents=True)  # not a repository
    (root / "empty").mkdir()
    git(root / "empty", "init", "--quiet", "--template=")  # no commits yet
    (root / "mirrors").mkdir()
    git(root / "mirrors", "init", "--quiet", "--bare", "--template=", "widget.git")  # bare: no checkout
    (root / "worktrees").mkdir()
    git(first, "worktree", "add", "--quiet", "-b", "wt", str(root / "worktrees" / "wt"))
    os.symlink(root, root / "org01" / "loop")  # a symlink loop


def build_fleet(base: Path, size: int, template: Template, now: int) -> tuple[Path, Path]:
    """A code root with ``size`` checkouts plus the edge cases, and a repos.yaml listing the checkouts."""
    root = base / f"fleet-{size}" / "code"
    root.mkdir(parents=True)
    with ThreadPoolExecutor(max_workers=4) as pool:
        members = list(pool.map(lambda i: make_member(template, root, i, now), range(size)))
    add_edge_cases(template, root, members[0])
    repos_file = root.parent / "repos.yaml"
    repos_file.write_text("repos:\n" + "".join(f"  - path: {path}\n" for path in members))
    return root, repos_file


# -- measuring ------------------------------------------------------------------------------------

_PARSE_PROBE = r"""
import json, sys, time
from airflow.dag_processing.dagbag import DagBag
from airflow.serialization.serialized_objects import DagSerialization
started = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1], safe_mode=False)
parsed = time.perf_counter()
size = sum(len(json.dumps(DagSerialization.to_dict(dag))) for dag in bag.dags.values())
print(json.dumps({"parse": parsed - started, "serialize": time.perf_counter() - parsed, "bytes": size,
                  "dags": sorted(bag.dags), "tasks": sum(len(dag.tasks) for dag in bag.dags.values()),
                  "errors": {k: str(v) for k, v in bag.import_errors.items()}}))
"""


def _parse_env(repos_file: Path, code_root: Path, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "CLONE_"))}
    env.update({
        "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT / "plugins"),
        "PYTHONPATH": str(PROJECT / "plugins"),
        "CLONE_REPOS_FILE": str(repos_file), "CLONE_CODE_ROOT": str(code_root),
        "CLONE_IDEAS_FILE": str(home / "ideas.yaml"), "CLONE_WORKSPACE": str(home / "workspace"),
    })
    return env


def parse_once(env: dict[str, str], home: Path) -> dict[str, object]:
    """Load every DAG file in dags/ with DagBag in a fresh interpreter; timings and serialized size."""
    result = subprocess.run([sys.executable, "-c", _PARSE_PROBE, str(PROJECT / "dags")],
                            env=env, capture_output=True, text=True, timeout=600, cwd=home)
    if result.returncode:
        raise RuntimeError(f"the parse probe failed:\n{result.stdout}\n{result.stderr}")
    run = json.loads(result.stdout.strip().splitlines()[-1])
    if run["errors"]:
        raise RuntimeError(f"DAG files with import errors: {run['errors']}")
    if "clone_fleet" not in run["dags"]:
        raise RuntimeError(f"dags/ did not produce clone_fleet (got {run['dags']})")
    return run


def measure_parse(fleets: dict[int, tuple[Path, Path]], base: Path,
                  repeats: int) -> dict[int, dict[str, float]]:
    """Median parse and serialize times per fleet size, sizes interleaved so drift hits all alike."""
    envs = {}
    for size, (root, repos_file) in fleets.items():
        home = base / f"airflow-home-{size}"
        home.mkdir(exist_ok=True)
        envs[size] = (_parse_env(repos_file, root, home), home)
    parse_once(*envs[min(envs)])  # warm-up, not counted: the first import fills the OS caches
    runs: dict[int, list[dict[str, object]]] = {size: [] for size in fleets}
    for _ in range(repeats):
        for size, (env, home) in envs.items():
            runs[size].append(parse_once(env, home))
    return {size: {"parse": statistics.median(r["parse"] for r in rs),
                   "serialize": statistics.median(r["serialize"] for r in rs),
                   "bytes": rs[-1]["bytes"], "tasks": rs[-1]["tasks"], "dags": len(rs[-1]["dags"])}
            for size, rs in runs.items()}


def baseline_discover(root: Path, active_days: int, now: float,
                      max_depth: int = MAX_DEPTH) -> dict[str, float]:
    """The bash version's way: ``find`` for ``.git``, then ``git log -1`` in each checkout, one by one.

    Same rules as clone.fleet.discover: at most ``max_depth`` folders down, hidden and dependency
    folders skipped, symlinks not followed, nothing inside a checkout. Plain subprocess on
    purpose: this stands for the old shell loop, not for Clone's code.
    """
    skip: list[str] = ["-name", ".*"]
    for name in sorted(SKIP_DIRS):
        skip += ["-o", "-name", name]
    found = subprocess.run(
        ["find", str(root), "-mindepth", "1", "-maxdepth", str(max_depth + 1),
         "(", "-name", ".git", "-print", "-prune", ")",
         "-o", "(", "-type", "d", "(", *skip, ")", "-prune", ")"],
        capture_output=True, text=True, timeout=600, check=True).stdout.splitlines()
    checkouts = sorted({os.path.dirname(p) for p in found})
    kept: list[str] = []
    for path in checkouts:  # sorted: a checkout comes before anything inside it
        if kept and (path + os.sep).startswith(kept[-1] + os.sep):
            continue
        kept.append(path)
    env = {**GIT_ENV, "GIT_CEILING_DIRECTORIES": str(root)}  # a broken .git must not find a parent repo
    cutoff = now - active_days * DAY
    active = {}
    for path in kept:
        result = subprocess.run(["git", "log", "-1", "--format=%ct"], cwd=path, env=env,
                                capture_output=True, text=True, timeout=60)
        if result.returncode == 0 and result.stdout.strip():
            committed = float(result.stdout.strip())
            if committed >= cutoff:
                active[path] = committed
    return active


def clone_discover(root: Path, active_days: int, now: float) -> dict[str, float]:
    return {str(c.path): c.committed_at for c in discover(root, active_days, now=now)}


def gitpython_discover(root: Path, active_days: int, now: float, odb: str = "GitDB") -> dict[str, float]:
    """The same walk, with each HEAD commit read by GitPython: ``Repo(path).head.commit.committed_date``.

    ``odb="GitDB"`` reads objects in-process with gitdb (as clone.util.git does); ``"GitCmdObjectDB"``
    is GitPython's default, which asks a ``git cat-file`` process per repository.
    """
    import git

    odbt = getattr(git, odb)
    cutoff = now - active_days * DAY
    active = {}
    for path in iter_checkouts(root, MAX_DEPTH):
        try:
            repo = git.Repo(path, odbt=odbt)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            continue
        try:
            committed = float(repo.head.commit.committed_date)
        except (ValueError, TypeError, OSError, git.GitCommandError, git.BadName, git.BadObject):
            continue  # empty, bare or broken, as discover skips them
        finally:
            repo.close()
        if committed >= cutoff:
            active[str(path)] = committed
    return active


def timed(fn: Callable[[], dict[str, float]], repeats: int) -> tuple[float, dict[str, float]]:
    times, result = [], {}
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def measure_discovery(root: Path, active_days: int, now: float, repeats: int,
                      gitpython: bool = False) -> dict[str, object]:
    clone_discover(root, active_days, now)  # warm the page cache for both methods alike
    clone_time, ours = timed(lambda: clone_discover(root, active_days, now), repeats)
    base_time, theirs = timed(lambda: baseline_discover(root, active_days, now), repeats)
    differ = sorted(set(ours.items()) ^ set(theirs.items()))
    result = {"clone": clone_time, "baseline": base_time, "active": len(ours), "differ": differ}
    if gitpython:
        for odb in ("GitDB", "GitCmdObjectDB"):
            took, found = timed(lambda odb=odb: gitpython_discover(root, active_days, now, odb), repeats)
            result[f"gitpython-{odb}"] = took
            result[f"gitpython-{odb}-differ"] = sorted(set(ours.items()) ^ set(found.items()))
    return result


# -- report -----------------------------------------------------------------------------------------

def render(sizes: Sequence[int], results: dict[int, dict[str, object]]) -> str:
    def row(label: str, cells: Sequence[str], ratio: str = "", target: str = "") -> str:
        return f"{label:<34}" + "".join(f"{c:>14}" for c in cells) + f"{ratio:>10}  {target}"

    small, large = results[sizes[0]], results[sizes[-1]]
    parse_ratio = large["parse"] / small["parse"]
    lines = [
        row("", [f"{n:,} repos" for n in sizes], f"{sizes[-1]}/{sizes[0]}", "target"),
        row("dags/ parse (DagBag, median)", [f"{results[n]['parse']:.3f} s" for n in sizes],
            f"{parse_ratio:.2f}x", f"<= {PARSE_TARGET}x"),
        row("dags/ serialize (median)", [f"{results[n]['serialize']:.3f} s" for n in sizes],
            f"{large['serialize'] / small['serialize']:.2f}x"),
        row("serialized DAGs (JSON)", [f"{results[n]['bytes'] / 1024:.1f} kB" for n in sizes],
            f"{large['bytes'] / small['bytes']:.2f}x"),
        row("DAGs / tasks", [f"{results[n]['dags']} / {results[n]['tasks']}" for n in sizes]),
        row("discovery: clone.fleet.discover", [f"{results[n]['clone']:.3f} s" for n in sizes],
            f"{large['clone'] / small['clone']:.2f}x"),
        row("discovery: find + git log -1", [f"{results[n]['baseline']:.3f} s" for n in sizes],
            f"{large['baseline'] / small['baseline']:.2f}x"),
        row("discovery speed-up", [f"{results[n]['baseline'] / results[n]['clone']:.1f}x" for n in sizes],
            "", f">= {SPEEDUP_TARGET}x at {sizes[-1]:,}"),
        row("active checkouts (both agree)", [
            f"{results[n]['active']}" + ("" if not results[n]["differ"] else " DIFFER") for n in sizes]),
    ]
    for odb in ("GitDB", "GitCmdObjectDB"):
        key = f"gitpython-{odb}"
        if key in large:
            lines.append(row(f"discovery: GitPython ({odb})", [
                f"{results[n][key]:.3f} s" + (" DIFFER" if results[n][f"{key}-differ"] else "") for n in sizes],
                f"{large[key] / small[key]:.2f}x"))
            lines.append(row("  slower than clone.fleet.discover",
                             [f"{results[n][key] / results[n]['clone']:.1f}x" for n in sizes]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,1000", help="comma-separated fleet sizes (default 100,1000)")
    parser.add_argument("--repeats", type=int, default=5, help="runs per measurement (median; default 5)")
    parser.add_argument("--active-days", type=int, default=14, help="discovery window (default 14)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary fleets and print where")
    parser.add_argument("--gitpython", action="store_true",
                        help="also time discovery reading each HEAD commit through GitPython (GitDB and "
                             "GitCmdObjectDB), the library the hand-written reader must beat to stay")
    parser.add_argument("--report-only", action="store_true",
                        help="print the figures without failing on missed targets "
                             "(differing discovery results still fail)")
    args = parser.parse_args(argv)
    try:
        sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    except ValueError:
        parser.error(f"--sizes must be comma-separated whole numbers, got {args.sizes!r}")
    if len(sizes) < 2 or sizes[0] < 1:
        parser.error("--sizes needs at least two different sizes of at least 1")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")

    # The fleets hold a broken and an empty repository on purpose: their warnings are expected.
    logging.getLogger("clone.fleet.discover").setLevel(logging.ERROR)
    base = Path(tempfile.mkdtemp(prefix="clone-bench-"))
    now = int(time.time())
    results: dict[int, dict[str, object]] = {}
    try:
        started = time.perf_counter()
        template = build_template(base, now)
        fleets = {}
        for size in sizes:
            t0 = time.perf_counter()
            fleets[size] = build_fleet(base, size, template, now)
            print(f"built a fleet of {size:,} checkouts in {time.perf_counter() - t0:.1f} s: "
                  f"{fleets[size][0]}", file=sys.stderr)
        parse = measure_parse(fleets, base, args.repeats)
        for size, (root, _) in fleets.items():
            results[size] = {**parse[size], **measure_discovery(root, args.active_days, now, args.repeats,
                                                                  args.gitpython)}
        print(f"(built and measured in {time.perf_counter() - started:.0f} s; {os.cpu_count()} CPUs, "
              f"{args.repeats} repetition(s), window {args.active_days} days)", file=sys.stderr)
    finally:
        if args.keep:
            print(f"fleets kept in {base}", file=sys.stderr)
        else:
            shutil.rmtree(base, ignore_errors=True)

    print(render(sizes, results))
    status = 0
    for size in sizes:
        if results[size]["differ"]:
            print(f"FAIL: at {size:,} repos clone.fleet.discover and find + git log disagree on: "
                  f"{results[size]['differ'][:5]}", file=sys.stderr)
            status = 1
    parse_ratio = results[sizes[-1]]["parse"] / results[sizes[0]]["parse"]
    speedup = results[sizes[-1]]["baseline"] / results[sizes[-1]]["clone"]
    missed = []
    if parse_ratio > PARSE_TARGET:
        missed.append(f"parse time grew {parse_ratio:.2f}x from {sizes[0]:,} to {sizes[-1]:,} repos "
                      f"(target <= {PARSE_TARGET}x)")
    if speedup < SPEEDUP_TARGET:
        missed.append(f"discovery is only {speedup:.1f}x faster than find + git log at {sizes[-1]:,} repos "
                      f"(target >= {SPEEDUP_TARGET}x)")
    for message in missed:
        print(("note: " if args.report_only else "FAIL: ") + message, file=sys.stderr)
    if missed and not args.report_only:
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
