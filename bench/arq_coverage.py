"""Which of arq's code runs in each worker mode, measured with coverage.

    .venv/bin/python bench/arq_coverage.py [--n 100]

Starts a redis-server of its own and a fresh SQLite database (settings.dev),
enqueues N jobs of `webproject.tasks.add`, and drains them once with
`manage.py jobs_worker --burst` and once with `arq jobs.arq.WorkerSettings
--burst`, each under `coverage run --source=arq`. Prints, per mode, the share
of arq's statements that ran and the arq functions that ran (docs/arq.md
quotes it).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from scratch_redis import scratch_redis

ROOT = Path(__file__).resolve().parent.parent
MODES = {
    "jobs_worker": ["manage.py", "jobs_worker", "--burst", "-l", "warning"],
    "arq": ["-m", "arq", "jobs.arq.WorkerSettings", "--burst"],
}
ENQUEUE = "from webproject.tasks import add\nfor i in range({n}): add.enqueue(i, 1)\n"


def python(args: list[str], env: dict[str, str]) -> None:
    subprocess.run([sys.executable, *args], cwd=ROOT, env=env, check=True)


def functions_run(report: dict) -> tuple[float, list[str]]:
    """The share of arq's statements run, and the arq functions with a line run."""
    totals = report["totals"]
    ran = []
    for path, data in sorted(report["files"].items()):
        module = Path(path).stem
        for name, function in data.get("functions", {}).items():
            if name and function["summary"]["covered_lines"]:
                ran.append(f"{module}.{name}")
    return totals["percent_covered"], ran


def measure(mode: str, n: int, env: dict[str, str], tmp: Path) -> None:
    python(["manage.py", "shell", "-c", ENQUEUE.format(n=n)], env)
    data = str(tmp / f"coverage.{mode}")
    python(["-m", "coverage", "run", f"--data-file={data}", "--source=arq",
            *MODES[mode]], env)  # fmt: skip
    out = tmp / f"{mode}.json"
    python(["-m", "coverage", "json", f"--data-file={data}", "-o", str(out), "-q"], env)
    percent, ran = functions_run(json.loads(out.read_text()))
    print(f"{mode}: {percent:.0f}% of arq's statements ran; {len(ran)} functions:")
    print("  " + ", ".join(ran))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100)
    n = parser.parse_args().n
    tmp = Path(tempfile.mkdtemp(prefix="arq-coverage-"))
    with scratch_redis() as port:
        run_modes(n, port, tmp)


def run_modes(n: int, port: int, tmp: Path) -> None:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "settings.dev",
        "REDIS_URL": f"redis://127.0.0.1:{port}/0",
        "DATABASE_PATH": str(tmp / "db.sqlite3"),
        "COVERAGE_RCFILE": str(tmp / "coveragerc"),  # not the project's settings
    }
    (tmp / "coveragerc").write_text("[run]\n")
    python(["manage.py", "migrate", "-v", "0"], env)
    for mode in MODES:
        measure(mode, n, env, tmp)


if __name__ == "__main__":
    main()
