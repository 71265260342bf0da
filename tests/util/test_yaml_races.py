"""repos.yaml and ideas.yaml written by Clone while another program appends without the lock.

The appender is a separate process doing what ``echo ... >> repos.yaml`` or an editor's save
into the same file does: open, append one entry, close, ~400 times, while Clone merges back to
back. Every appended entry and every one of Clone's own changes must be in the file at the end.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from clone.util import yamlio
from clone.errors import ConfigError
from clone.fleet.repos_file import merge_discovered
from clone.ideas.ideas_file import load_ideas, update_idea

APPENDS = 400

# Bursts of quick appends with short pauses between: a burst lands in the middle of Clone's
# read-merge-replace (where the old code lost it); a pause lets a merge through (a file that
# never stops changing is an error by design, tested below).
APPENDER = textwrap.dedent("""
    import random, sys, time
    path, count, template = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    rng = random.Random(7)
    for n in range(count):
        with open(path, "a", encoding="utf-8") as handle:  # what `>>` does: no lock
            handle.write(template.replace("N", f"{n:04d}"))
        time.sleep(rng.uniform(0.15, 0.5) if n % 20 == 19 else rng.uniform(0, 0.004))
""")


def race(path: Path, template: str, write_once) -> int:
    """Run the appender against ``write_once(i)`` called back to back; return Clone's write count."""
    appender = subprocess.Popen([sys.executable, "-c", APPENDER, str(path), str(APPENDS), template])
    writes = 0
    try:
        while appender.poll() is None:
            write_once(writes)
            writes += 1
    finally:
        assert appender.wait(60) == 0
    return writes


def test_unlocked_appends_racing_discovery_are_not_lost(tmp_path):
    source = tmp_path / "repos.yaml"
    source.write_text("# my fleet\nrepos:\n  - path: /code/first   # keep me\n")

    def discover(i: int) -> None:
        merge_discovered(source, [tmp_path / "found" / f"d{i:05d}"])

    writes = race(source, "  - path: /code/appended-N\n", discover)
    assert writes > 20, "discovery must actually race the appender"
    # The paths are not checkouts (load_fleet would skip them): count the raw entries.
    paths = [entry["path"] for entry in yamlio.load_document(source)["repos"]]
    appended = [p for p in paths if p.startswith("/code/appended-")]
    lost = APPENDS - len(set(appended))
    assert lost == 0, f"{lost} of {APPENDS} unlocked appends were lost ({writes} discovery writes)"
    assert len(appended) == APPENDS  # and none duplicated by a restore
    assert {str(tmp_path / "found" / f"d{i:05d}") for i in range(writes)} <= set(paths)
    assert "# keep me" in source.read_text()


def test_unlocked_appends_racing_idea_updates_are_not_lost(tmp_path):
    path = tmp_path / "ideas.yaml"
    path.write_text("ideas:\n  - id: seed   # the first idea\n    status: NEW\n")

    def update(i: int) -> None:
        update_idea(path, "seed", {"summary": f"revision {i}"})

    writes = race(path, "  - id: appended-N\n    title: Appended N\n", update)
    assert writes > 20
    ideas, problems = load_ideas(path)
    assert problems == []
    appended = [i.id for i in ideas if i.id.startswith("appended-")]
    lost = APPENDS - len(set(appended))
    assert lost == 0, f"{lost} of {APPENDS} unlocked appends were lost ({writes} idea updates)"
    assert len(appended) == APPENDS
    assert ideas[0].id == "seed" and ideas[0].summary == f"revision {writes - 1}"


def test_a_file_that_never_stops_changing_is_a_clear_error(tmp_path, monkeypatch):
    source = tmp_path / "repos.yaml"
    source.write_text("repos: []\n")
    monkeypatch.setattr(yamlio, "MAX_MERGE_ATTEMPTS", 3)
    calls = []

    def meddle(document):  # an editor saves each time between our read and our replace
        calls.append(1)
        with open(source, "a") as handle:
            handle.write("# edited\n")
        document["repos"].append({"path": "/code/x"})

    with pytest.raises(ConfigError, match=r"repos.yaml: the file changed under every one of 3 attempts"):
        yamlio.update_document(source, meddle, empty=dict)
    assert len(calls) == 3
    assert "/code/x" not in source.read_text() and source.read_text().count("# edited") == 3


@pytest.mark.parametrize("also_new", [False, True])
def test_an_append_into_the_replaced_file_is_put_back(tmp_path, monkeypatch, also_new):
    # `>>` opened the file just before Clone's rename and writes just after: its bytes go to the
    # old inode. Clone holds that inode open, sees the append, restores it and merges again.
    source = tmp_path / "repos.yaml"
    source.write_text("repos:\n  - path: /code/first\n")
    real_replace = yamlio.os.replace
    late = []

    def replace_with_a_late_append(src, dst):
        if not late:
            late.append(open(dst, "a", encoding="utf-8"))  # noqa: SIM115
            real_replace(src, dst)
            late[0].write("  - path: /code/late\n")
            late[0].close()
            if also_new:  # the next `>>` already writes into the new file
                with open(dst, "a", encoding="utf-8") as handle:
                    handle.write("  - path: /code/later\n")
        else:
            real_replace(src, dst)

    monkeypatch.setattr(yamlio.os, "replace", replace_with_a_late_append)
    assert merge_discovered(source, [tmp_path / "new"]) == [str(tmp_path / "new")]
    paths = [entry["path"] for entry in yamlio.load_document(source)["repos"]]
    later = ["/code/later"] if also_new else []
    assert paths == ["/code/first", "/code/late", *later, str(tmp_path / "new")]
