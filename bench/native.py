"""Producers written in the peer's own language (BullMQ in Node, Sidekiq in Ruby).

A system module that defines ``producer_command(cfg)`` has its producer run
as that command instead of ``python <system>_bench.py produce``; everything
else of the harness (phases, timing formulas, worker CPU, PSS, Redis
accounting, the stop by PID) is the same as for the Python peers. The command
gets ``--phase P --n N --batch B [--threads T] [--gaps FILE]`` and prints the
same ``RESULT {json}`` line: ``t_first``, ``t_last``, ``cpu_s`` for the
enqueue phases, ``enq`` (index -> enqueue stamp) for the latency phase, whose
start stamps the harness then reads from its own Redis.

For the latency phase the native producer paces its enqueues with the Poisson
gaps the harness draws for the Python producers (the same seed), written to a
file. The clocks agree: Node's ``process.hrtime`` and Ruby's
``CLOCK_MONOTONIC`` read the clock ``time.monotonic()`` reads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any


def run_producer(
    mod: ModuleType,
    cfg: dict[str, Any],
    phase: str,
    opts: dict[str, Any],
    env: dict[str, str],
    log: Path,
) -> dict[str, Any]:
    """Run one producer phase of a native system; its RESULT as a dict.

    opts: n, batch, threads, timeout, and gaps (seconds between arrivals) for
    the latency phase.
    """
    cmd = [*mod.producer_command(cfg), "--phase", phase, "--n", str(opts["n"])]
    cmd += ["--batch", str(opts["batch"]), "--threads", str(opts["threads"])]
    gaps_file = None
    if phase == "lat":
        fd, gaps_file = tempfile.mkstemp(prefix="bench-lat-gaps-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(opts["gaps"], f)
        cmd += ["--gaps", gaps_file]
    try:
        with open(log, "ab") as lf:
            head = f"\n=== producer {phase} n={opts['n']}: {' '.join(cmd)}\n"
            lf.write(head.encode())
            lf.flush()
            proc = subprocess.run(
                cmd,
                cwd=mod.NATIVE_DIR,
                env=env,
                stdout=subprocess.PIPE,
                stderr=lf,
                timeout=opts["timeout"],
            )
    finally:
        if gaps_file:
            os.unlink(gaps_file)
    out = proc.stdout.decode(errors="replace")
    for line in reversed(out.splitlines()):
        if line.startswith("RESULT "):
            res: dict[str, Any] = json.loads(line[len("RESULT ") :])
            if "enq" in res:
                res["enq"] = {int(k): float(v) for k, v in res["enq"].items()}
            return res
    raise RuntimeError(
        f"producer {phase} failed (rc={proc.returncode}); see {log}\n{out[-2000:]}"
    )


def config_json(cfg: dict[str, Any]) -> str:
    """The config as the native worker and producer read it (argv), without
    the harness's own keys ("_name")."""
    return json.dumps({k: v for k, v in cfg.items() if not k.startswith("_")})


def main(module_name: str, versions: Callable[[], dict[str, str]]) -> None:
    """A native system's command line: the harness's, plus `versions` (what
    bench/run writes into versions.txt)."""
    if sys.argv[1:2] == ["versions"]:
        print(" ".join(f"{k}=={v}" for k, v in versions().items()))
        return
    import harness  # not at the top: harness imports this module

    harness.main(module_name)
