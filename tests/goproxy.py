"""A Go module proxy on disk for the tests: the real GOPROXY protocol over file:// (the public proxy cannot
be reached here), so ``go mod download`` and ``go mod tidy`` fetch for real."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path


def go_proxy(root: Path, modules: dict[tuple[str, str], dict[str, str]]) -> str:
    """Serve ``{(module, version): {file: text}}`` as a GOPROXY at ``root``: ``<module>/@v/list``,
    ``<version>.info``, ``.mod`` and ``.zip`` (entries under ``module@version/``). Module paths must be
    lower case (the protocol's ``!``-escaping of capitals is not needed then). Returns the file:// URL."""
    for (module, version), files in modules.items():
        folder = root / module / "@v"
        folder.mkdir(parents=True, exist_ok=True)
        listed = folder / "list"
        listed.write_text((listed.read_text() if listed.exists() else "") + version + "\n")
        (folder / f"{version}.info").write_text(json.dumps({"Version": version, "Time": "2024-01-01T00:00:00Z"}))
        (folder / f"{version}.mod").write_text(files["go.mod"])
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for rel, text in sorted(files.items()):
                archive.writestr(f"{module}@{version}/{rel}", text)
        (folder / f"{version}.zip").write_bytes(buffer.getvalue())
    return root.resolve().as_uri()


def go_env(base: Path) -> dict[str, str]:
    """A fresh module cache and a file-based proxy holding ``example.com/greet v1.0.0``; no checksum DB."""
    proxy = go_proxy(base / "goproxy", {("example.com/greet", "v1.0.0"): {
        "go.mod": "module example.com/greet\n\ngo 1.19\n",
        "greet.go": 'package greet\n\nfunc Greet(name string) string { return "hello, " + name }\n',
    }})
    return {"GOPROXY": proxy, "GONOSUMDB": "example.com", "GOFLAGS": "-modcacherw",
            "GOMODCACHE": str(base / "gomodcache"), "GOCACHE": str(base / "gocache"), "GOTOOLCHAIN": "local"}
