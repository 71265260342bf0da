"""Safe reading and writing of the user's YAML files (repos.yaml, ideas.yaml).

Writes happen under an exclusive lock, re-read the file first so a concurrent edit by a
person is not lost, keep comments and key order (ruamel round-trip), and replace the file
atomically (temp file + fsync + ``os.replace``): a crash never leaves half a file.

Editors and shells do not take the lock, so every write also checks, right before
``os.replace``, that the file is still the one it read (inode, size, mtime_ns and a SHA-256
of the bytes) and redoes the merge on a fresh read when it is not. After the replace it
checks the old inode (held open) once more: an append that landed there in the remaining
window (``>>`` opened the file before the rename) is put back and the merge redone.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import logging
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.tokens import CommentToken

from clone.errors import ConfigError

log = logging.getLogger(__name__)

# How many times a write re-reads and re-merges a file that keeps changing under it.
MAX_MERGE_ATTEMPTS = 20

def _round_trip() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    return yaml


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``<path>.lock`` (created beside the file)."""
    lock_path = path.with_name(path.name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def atomic_write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one step, keeping the file's permissions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o7777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def load_document(path: Path) -> Any:
    """Parse ``path`` as YAML (round-trip types, comments kept). A missing file is ``None``."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e}") from e
    try:
        return _round_trip().load(text)
    except YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from e


def dump_document(document: Any) -> str:
    buffer = io.StringIO()
    _round_trip().dump(document, buffer)
    return buffer.getvalue()


def update_document(path: Path, mutate: Callable[[Any], Any], *, empty: Callable[[], Any]) -> Any:
    """Lock ``path``, re-read it, apply ``mutate`` and write it back atomically if it changed.

    ``mutate`` receives the parsed document (``empty()`` when the file does not exist) and
    changes it in place; what it returns is returned. It may run more than once: when an
    unlocked editor changes the file between the read and the replace, the write is dropped
    and the merge redone on a fresh read (at most MAX_MERGE_ATTEMPTS times, then ConfigError).
    A file that does not parse is never overwritten: the ConfigError propagates.
    """
    with locked(path):
        for attempt in range(MAX_MERGE_ATTEMPTS):
            if attempt:
                time.sleep(random.uniform(0.01, 0.05))  # let a burst of edits (an editor's save) end
            done, result = _merge_once(path, mutate, empty)
            if done:
                return result
    raise ConfigError(f"{path}: the file changed under every one of {MAX_MERGE_ATTEMPTS} attempts to write it "
                      "(another program keeps editing it without the lock); nothing was written, try again "
                      "when it is quiet")


def _stamp(handle: Any) -> tuple[int, int, int, bytes]:
    """(inode, size, mtime_ns, sha256) of an open file, read from its start."""
    handle.seek(0)
    content = handle.read()
    info = os.fstat(handle.fileno())
    return info.st_ino, info.st_size, info.st_mtime_ns, hashlib.sha256(content).digest()


def _current_stamp(path: Path) -> tuple[int, int, int, bytes] | None:
    try:
        with open(path, "rb") as handle:
            return _stamp(handle)
    except FileNotFoundError:
        return None


def _merge_once(path: Path, mutate: Callable[[Any], Any], empty: Callable[[], Any]) -> tuple[bool, Any]:
    """One read-merge-replace. (True, result) when written or nothing to write; (False, None) to redo."""
    try:
        original = open(path, "rb")  # noqa: SIM115 - held open past the replace, closed below
    except FileNotFoundError:
        original = None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e}") from e
    try:
        if original is None:
            stamp, text = None, None
        else:
            stamp = _stamp(original)
            original.seek(0)
            raw = original.read()
            if _stamp(original) != stamp:
                return False, None  # written to while we read it
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ConfigError(f"{path}: cannot read: {e}") from e
        document = _parse(path, text) if text is not None else None
        if document is None:
            document = empty()
        # The bash version's files are JSON: keep them JSON (they cannot hold comments to lose).
        dump = _dump_json if text is not None and _is_json_text(text) else dump_document
        before = dump(document)
        result = mutate(document)
        after = dump(document)
        if after == before and original is not None:
            return True, result
        tmp = _prepare(path, after)
        try:
            # The last look before the rename: anything an editor did since our read is redone.
            if _current_stamp(path) != stamp:
                log.info("%s changed while Clone was writing it (an edit without the lock): merging again", path)
                return False, None
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        if original is not None and _stamp(original) != stamp:
            # Someone wrote into the inode we just replaced (opened before the rename, wrote after):
            # put their version back and merge again. Appends made meanwhile to the new file (ours)
            # are carried over; any other change to it cannot be told from ours: an error.
            ours = after.encode("utf-8")
            try:
                current = path.read_bytes()
            except FileNotFoundError:
                current = b""
            if not current.startswith(ours):
                raise ConfigError(f"{path}: edited by another program in two places while Clone was writing "
                                  "it; check that your last edit is in it, or edit under the lock")
            original.seek(0)
            theirs = original.read() + current[len(ours):]
            restored = _prepare(path, theirs.decode("utf-8", errors="surrogateescape"))
            os.replace(restored, path)
            log.info("%s was appended to while Clone replaced it: put that edit back, merging again", path)
            return False, None
        return True, result
    finally:
        if original is not None:
            original.close()


def _parse(path: Path, text: str) -> Any:
    try:
        return _round_trip().load(text)
    except YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from e


def _prepare(path: Path, text: str) -> str:
    """A fsynced temporary file beside ``path`` holding ``text``, with ``path``'s permissions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o7777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return tmp


def _is_json_text(text: str) -> bool:
    if not text.lstrip().startswith("{"):
        return False
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _dump_json(document: Any) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n"


def keep_trailing_comment(entry: Any, old_last: Any) -> None:
    """Comment lines after an entry's last key (say, a heading for the next idea) stay after the entry.

    ruamel attaches them to that key, so keys appended after it would land below them.
    """
    item = entry.ca.items.get(old_last)
    new_last = next(reversed(entry), None)
    if new_last == old_last or not item or len(item) < 3 or item[2] is None:
        return
    token = item[2]
    eol, _, following = token.value.partition("\n")
    if not following:
        return
    if eol:
        token.value = eol + "\n"  # the key's own end-of-line comment stays where it is
    else:
        item[2] = None
    entry.ca.items.setdefault(new_last, [None, None, None, None])[2] = CommentToken("\n" + following,
                                                                                   token.start_mark)
