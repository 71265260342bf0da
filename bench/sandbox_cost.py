#!/usr/bin/env python
"""What the bubblewrap sandbox costs per pass, in seconds.

    .venv/bin/python bench/sandbox_cost.py              # 5 rounds (the default)
    .venv/bin/python bench/sandbox_cost.py --rounds 10 --json

Each round runs, with ``CLONE_SANDBOX=required`` and with ``CLONE_SANDBOX=off``, alternating:

* **codex agent**: the real Codex CLI (``tests/fakes/codex_cli.py`` installs @openai/codex 0.169.0 from the
  npm registry) through ``CodexAgent.run`` against the local OpenAI-compatible model server of the tests
  (``tests/fakes/model_server.py``): one shell command (it writes a file in the work tree) and a final
  message, so codex starts, calls the model twice and runs one command, inside its own workspace-write
  sandbox inside Clone's;
* **check**: ``verify.run_checks`` of one ``python -c pass`` check (the sandbox's set-up cost on the
  smallest check; a pass runs each check twice, baseline and after the agent, baseline cached per sha).

The codex agent also runs sandboxed with ``CLONE_SANDBOX_AGENT_NETWORK=host`` (the worker's network) besides
the default ``model`` (a private network namespace whose only way out is Clone's egress proxy): the row
``codex host`` and the ``model network`` line show what the proxy and its bridge cost per agent run.
It prints the median wall time of each, sandboxed and not, and the difference: the sandbox's cost. A
pass costs about one agent run plus two runs of each check.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from clone.agents.base import AgentRun  # noqa: E402
from clone.agents.codex import CodexAgent  # noqa: E402
from clone.checks import verify  # noqa: E402
from clone.util import sandbox  # noqa: E402
from tests.fakes.codex_cli import install_codex, write_codex_home  # noqa: E402
from tests.fakes.model_server import FakeModelServer, Message, ShellCall  # noqa: E402


def _work_tree(root: Path) -> Path:
    work = root / "ws" / "repos" / "bench"
    work.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(work)], check=True)
    return work


def codex_once(root: Path, codex: Path, mode: str, index: int, network: str = "model") -> tuple[float, bool]:
    work = _work_tree(root / f"codex-{mode}-{network}-{index}")
    codex_home = root / f"codex-home-{mode}-{network}-{index}"
    script = [ShellCall(f"printf 'hi\\n' > out-{index}.txt"), Message("Outcome: done")]
    with FakeModelServer(script=script) as model:
        write_codex_home(codex_home, model.base_url, env_key="FAKE_MODEL_KEY")
        os.environ.update(CLONE_SANDBOX=mode, CLONE_SANDBOX_AGENT_NETWORK=network, CODEX_HOME=str(codex_home), FAKE_MODEL_KEY="not-a-real-key",
                          PATH=f"{codex.parent}{os.pathsep}{os.environ['PATH']}")
        agent = CodexAgent(model="fake-model", timeout_seconds=300, passthrough=("FAKE_MODEL_KEY",))
        started = time.monotonic()
        result = agent.run(AgentRun(workdir=work, prompt="write the file", repo_name="bench"))
        elapsed = time.monotonic() - started
    return elapsed, result.ok and (work / f"out-{index}.txt").read_text() == "hi\n"


def check_once(root: Path, mode: str, index: int) -> tuple[float, bool]:
    work = _work_tree(root / f"check-{mode}-{index}")
    os.environ["CLONE_SANDBOX"] = mode
    started = time.monotonic()
    result, = verify.run_checks(work, [verify.Check("noop", (sys.executable, "-c", "pass"), "bench")],
                                timeout_seconds=60)
    return time.monotonic() - started, result.ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    args = parser.parse_args()
    if why := sandbox.probe():
        print(f"the sandbox cannot run here: {why}", file=sys.stderr)
        return 2
    codex = install_codex()
    times: dict[str, list[float]] = {f"{kind} {mode}": [] for kind in ("codex", "check")
                                     for mode in ("required", "off")}
    times["codex host"] = []
    with tempfile.TemporaryDirectory(prefix="clone-sandbox-bench-") as tmp:
        root = Path(tmp)
        for index in range(args.rounds):
            for mode in (("required", "off") if index % 2 == 0 else ("off", "required")):
                for kind, once in (("codex", lambda: codex_once(root, codex, mode, index)),
                                   ("check", lambda: check_once(root, mode, index))):
                    elapsed, ok = once()
                    if not ok:
                        print(f"{kind} with CLONE_SANDBOX={mode} failed in round {index + 1}", file=sys.stderr)
                        return 1
                    times[f"{kind} {mode}"].append(elapsed)
            elapsed, ok = codex_once(root, codex, "required", index, "host")
            if not ok:
                print(f"codex with CLONE_SANDBOX_AGENT_NETWORK=host failed in round {index + 1}", file=sys.stderr)
                return 1
            times["codex host"].append(elapsed)
    medians = {name: statistics.median(values) for name, values in times.items()}
    agent_cost = medians["codex required"] - medians["codex off"]
    check_cost = medians["check required"] - medians["check off"]
    print(f"sandbox cost, median of {args.rounds} rounds (seconds):")
    for kind in ("codex", "check"):
        print(f"  {kind:6} sandboxed {medians[kind + ' required']:6.3f}  unsandboxed {medians[kind + ' off']:6.3f}"
              f"  cost {medians[kind + ' required'] - medians[kind + ' off']:+6.3f}"
              f"  (all sandboxed: {', '.join(f'{v:.2f}' for v in times[kind + ' required'])})")
    print(f"  codex   sandboxed, host network {medians['codex host']:6.3f}: the model network costs "
          f"{medians['codex required'] - medians['codex host']:+6.3f} per agent run "
          f"(all host: {', '.join(f'{v:.2f}' for v in times['codex host'])})")
    print(f"  per pass (one agent run + 2 runs of each check): {agent_cost:+.3f} s + {2 * check_cost:+.3f} s per check")
    if args.json:
        print(json.dumps({"rounds": args.rounds, "medians": medians, "agent_cost": agent_cost,
                          "check_cost": check_cost,
                          "model_network_cost": medians["codex required"] - medians["codex host"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
