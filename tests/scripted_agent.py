#!/usr/bin/env python3
"""A scripted coding agent for tests, following the ``command`` agent contract.

It reads a JSON plan from the file named by ``SCRIPTED_AGENT_PLAN`` (handed through
CLONE_AGENT_ENV_PASSTHROUGH): ``{"<repo>": {"pass": [actions], "autofix": [actions]}, "*": {...}}``.
Actions: ``{"write": path, "text": str}``, ``{"append": path, "text": str}``,
``{"delete": path}``, ``{"print": str}``, ``{"sleep": seconds}``, ``{"exit": code}``,
``{"spawn_sleeper": seconds}`` (a child process, to test process-group kills),
``{"replace": path, "old": str, "new": str}``, ``{"copy": path, "to": path}`` (a snapshot of a file, e.g.
the repo's lease while the agent runs), ``{"usage": {...}, "times": n, "sleep": s}``
(prints codex-style ``turn.completed`` events carrying that usage, ``times`` times),
``{"shell": command, "name": str}`` (runs ``sh -c command``; appends ``{"attack": name, "exit": code,
"output": ...}`` to ``SCRIPTED_AGENT_LOG``: what an agent's tool call could do).
Every call appends a record (cwd, pass kind, env, prompt, process group) to ``SCRIPTED_AGENT_LOG`` if set.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path


def main() -> int:
    prompt = sys.stdin.read()
    repo = os.environ.get("CLONE_REPO_NAME", "")
    kind = os.environ.get("CLONE_PASS_KIND", "")
    log_path = os.environ.get("SCRIPTED_AGENT_LOG")
    if log_path:
        with open(log_path, "a") as handle:
            handle.write(json.dumps({
                "cwd": os.getcwd(), "repo": repo, "kind": kind, "env": dict(os.environ),
                "prompt": prompt, "pgid": os.getpgrp(),
                "prompt_file_matches": Path(os.environ["CLONE_PROMPT_FILE"]).read_text() == prompt,
            }) + "\n")
    plan_file = os.environ.get("SCRIPTED_AGENT_PLAN")
    plan = json.loads(Path(plan_file).read_text()) if plan_file else {}
    actions = (plan.get(repo) or plan.get("*") or {}).get(kind, [])
    for action in actions:
        if "usage" in action:
            for _ in range(int(action.get("times", 1))):
                print(json.dumps({"type": "turn.completed", "usage": action["usage"]}), flush=True)
                time.sleep(float(action.get("sleep", 0)))
        elif "write" in action:
            Path(action["write"]).parent.mkdir(parents=True, exist_ok=True)
            Path(action["write"]).write_text(action["text"])
        elif "append" in action:
            with open(action["append"], "a") as handle:
                handle.write(action["text"])
        elif "delete" in action:
            Path(action["delete"]).unlink()
        elif "print" in action:
            print(action["print"], flush=True)
        elif "sleep" in action:
            time.sleep(action["sleep"])
        elif "spawn_sleeper" in action:
            child = subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({action['spawn_sleeper']})"])
            print(f"child pid {child.pid}", flush=True)
        elif "copy" in action:
            Path(action["to"]).write_bytes(Path(action["copy"]).read_bytes())
        elif "replace" in action:
            target = Path(action["replace"])
            target.write_text(target.read_text().replace(action["old"], action["new"]))
        elif "shell" in action:
            done = subprocess.run(["sh", "-c", action["shell"]], capture_output=True, text=True, timeout=60)
            if log_path:
                with open(log_path, "a") as handle:
                    handle.write(json.dumps({"attack": action.get("name", action["shell"]), "exit": done.returncode,
                                             "output": (done.stdout + done.stderr)[-2000:]}) + "\n")
        elif "exit" in action:
            return int(action["exit"])
    print(f"scripted agent done: {repo} {kind}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
