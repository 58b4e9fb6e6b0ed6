"""What Redis ran, in its order and stamped by its own clock (MONITOR), for
tests that must judge timing by Redis's clock rather than by a process's reads,
which a loaded machine delays."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import redis

END = "test:monitor:end"  # echoed to mark the end of the log
WORD = re.compile(rb'"((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True, slots=True)
class Command:
    us: int  # Redis's clock when it ran the command, in microseconds
    lua: bool  # run by a script
    words: list[str]

    @property
    def ms(self) -> int:
        """The stamp in whole ms, as the scripts read Redis's TIME."""
        return self.us // 1000


def parse(line: bytes) -> Command:
    """One MONITOR line: '<s>.<us> [<db> <client>] "WORD" ...'."""
    stamp, rest = line.split(b" ", 1)
    seconds, micros = stamp.split(b".")
    client = rest[rest.index(b" ") + 1 : rest.index(b"]")]
    words = [w.decode() for w in WORD.findall(rest[rest.index(b"]") :])]
    return Command(int(seconds) * 1_000_000 + int(micros), client == b"lua", words)


@contextmanager
def monitored(client: redis.Redis) -> Iterator[list[Command]]:
    """Collect every command Redis runs inside the block (filled on exit)."""
    log: list[Command] = []
    lines: list[bytes] = []
    with client.monitor() as monitor:

        def read() -> None:
            while END.encode() not in (line := monitor.connection.read_response()):
                lines.append(line)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            yield log
        finally:
            client.echo(END)
            reader.join(timeout=30)
    assert not reader.is_alive(), "MONITOR never saw the end mark"
    log.extend(parse(line) for line in lines)
