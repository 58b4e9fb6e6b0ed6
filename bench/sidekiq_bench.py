"""Sidekiq (Ruby; Debian's ruby-sidekiq 6.4) under the same harness: worker
`sidekiq -r sidekiq/jobs.rb -c C`, producer sidekiq/producer.rb (see
native.py), the same job as jobside.py's (an INCR on the harness Redis).
Installed by setup_ext.sh; runs from the project's .venv like jobs_bench.py.

Sidekiq (open source) stores no results and fetches with BRPOP, without an
acknowledgement: a job whose process dies mid-run is lost, a weaker guarantee
than django-jobs' leases.

Run: ../.venv/bin/python sidekiq_bench.py run --config sidekiq-c10 [--n 10000]
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import native
from native import config_json

SYSTEM = "sidekiq"
NATIVE_DIR = Path(__file__).resolve().parent / "sidekiq"
RUBY = "ruby"
SIDEKIQ = "sidekiq"

CONFIGS = {
    # Sidekiq 6.4's default concurrency (10 threads), one process.
    "sidekiq-c10": {"concurrency": 10},
    # 100 threads in one process (jobs-c100's 100 jobs at once).
    "sidekiq-c100": {"concurrency": 100},
}
# Sidekiq's client is plain blocking code: no "100 concurrent on one event
# loop"; its bulk API and 16 producer threads instead.
BATCH_KIND = None
BULK_KIND = "Sidekiq::Client.push_bulk of 100"
THREADS = True
WAITS = False


def worker_commands(cfg: dict) -> list[list[str]]:
    jobs_rb = str(NATIVE_DIR / "jobs.rb")
    concurrency = str(cfg["concurrency"])
    return [[SIDEKIQ, "-r", jobs_rb, "-c", concurrency, "-q", "default", "-t", "10"]]


def producer_command(cfg: dict) -> list[str]:
    return [RUBY, str(NATIVE_DIR / "producer.rb"), config_json(cfg)]


def versions() -> dict[str, str]:
    code = (
        'require "sidekiq"; require "redis"; require "connection_pool"; puts '
        "[RUBY_VERSION, Sidekiq::VERSION, Redis::VERSION, ConnectionPool::VERSION]"
        '.join(" ")'
    )
    out = subprocess.run([RUBY, "-e", code], capture_output=True, text=True)
    names = ["ruby", "sidekiq", "redis-rb", "connection_pool"]
    return dict(zip(names, out.stdout.split(), strict=False))


if __name__ == "__main__":
    native.main("sidekiq_bench", versions)
