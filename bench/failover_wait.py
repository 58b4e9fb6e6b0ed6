"""How long writes wait for a replica after a planned Sentinel failover.

`WAIT_REPLICAS: 1` makes enqueue send `WAIT 1 <WAIT_TIMEOUT ms>` after its
script and raise NotReplicated when no replica acknowledged in time. This
starts a master, N replicas and three sentinels on loopback with Redis's own
replication settings (`tests.servers.SentinelSet(fast_sync=False)`), runs
`SENTINEL FAILOVER`, then writes a key and sends `WAIT 1 1000` on whatever the
sentinels name as master, until a replica acknowledges.

    .venv/bin/python bench/failover_wait.py --replicas 1 --runs 3
    .venv/bin/python bench/failover_wait.py --replicas 2 --runs 3
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.servers import SentinelSet  # noqa: E402

WAIT_TIMEOUT = 1000  # ms, as enqueue's default WAIT_TIMEOUT


def acknowledged(port: int) -> bool:
    """Whether a write on `port` reached a replica within WAIT_TIMEOUT."""
    client = redis.Redis(port=port, socket_timeout=5)
    try:
        client.set("failover:probe", time.time())
        return int(client.execute_command("WAIT", 1, WAIT_TIMEOUT)) >= 1
    except redis.RedisError:  # demoted (READONLY) or restarting: refused too
        return False
    finally:
        client.close()


def one_run(replicas: int) -> tuple[float, float, int]:
    """(s to the new master, s to the first acknowledged write, refusals)."""
    servers = SentinelSet(replicas=replicas, fast_sync=False)
    servers.start()
    try:
        old = servers.master_port()
        while not acknowledged(old):  # the replicas' first sync
            time.sleep(0.05)
        started = time.monotonic()
        servers.sentinel(servers.sentinels[0][0]).execute_command(
            "SENTINEL", "FAILOVER", servers.service
        )
        while servers.master_port() == old:
            time.sleep(0.05)
        switched = time.monotonic() - started
        refused = 0
        while not acknowledged(servers.master_port()):
            refused += 1
            time.sleep(0.05)
        return switched, time.monotonic() - started, refused
    finally:
        servers.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    for run in range(1, args.runs + 1):
        switched, acked, refused = one_run(args.replicas)
        print(
            f"replicas {args.replicas} run {run}: new master after {switched:.1f} s, "
            f"first write a replica acknowledged after {acked:.1f} s "
            f"({acked - switched:.1f} s later, {refused} writes refused meanwhile)",
            flush=True,
        )


if __name__ == "__main__":
    main()
