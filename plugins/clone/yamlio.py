"""Safe reading and writing of the user's YAML files (repos.yaml, ideas.yaml).

Writes happen under an exclusive lock, re-read the file first so a concurrent edit by a
person is not lost, keep comments and key order (ruamel round-trip), and replace the file
atomically (temp file + fsync + ``os.replace``): a crash never leaves half a file.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from clone.errors import ConfigError

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
    changes it in place; what it returns is returned. A file that does not parse is never
    overwritten: the ConfigError propagates.
    """
    with locked(path):
        document = load_document(path)
        if document is None:
            document = empty()
        # The bash version's files are JSON: keep them JSON (they cannot hold comments to lose).
        dump = _dump_json if _is_json(path) else dump_document
        before = dump(document)
        result = mutate(document)
        after = dump(document)
        if after != before or not path.exists():
            atomic_write_text(path, after)
    return result


def _is_json(path: Path) -> bool:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return False
    if not text.lstrip().startswith("{"):
        return False
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _dump_json(document: Any) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n"
