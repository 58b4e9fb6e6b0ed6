"""Where the worker's CPU goes, from a py-spy "raw" (collapsed stacks) file.

Each line of the file is ``frame;frame;...;frame count``, outermost first, a
frame being ``function (path:line)``. py-spy leaves idle threads out by
default, so the samples are CPU time (GIL held or native code running).

Usage: python profile_summary.py results/<run>/profile/jobs-c100.pyspy.txt
"""

from __future__ import annotations

import gzip
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*?) \((?P<path>[^()]*?)(?::\d+)?\)$")

# Leaf frames grouped by where their code lives, first match wins: what the
# "gap to the Redis ceiling" section reports.
GROUPS = [
    # Samples whose last Python frame is the loop's entry point are in uvloop's
    # C code: polling, timers, dispatching callbacks and task steps.
    (
        "event loop internals (uvloop C code)",
        re.compile(r"^(arq/worker\.py|asyncio/(base_events|runners)\.py)$"),
    ),
    ("socket reads and writes (asyncio streams)", re.compile(r"^asyncio/streams\.py$")),
    ("asyncio tasks, locks, timeouts", re.compile(r"^asyncio/")),
    ("django-jobs (jobs/)", re.compile(r"^jobs/")),
    ("redis-py client", re.compile(r"^redis/")),
    ("arq", re.compile(r"^arq/")),
    ("Django, asgiref", re.compile(r"^(django|asgiref)/")),
    ("the bench job (jobside, bench_tasks)", re.compile(r"(jobside|bench_tasks)\.py$")),
    ("json", re.compile(r"^json/")),
]
# Frames every sample of the main thread goes through: no information.
ROOTS = re.compile(r"^jobs/management/")


@dataclass
class Profile:
    total: int = 0
    own: Counter[str] = field(default_factory=Counter)  # leaf frame: self time
    inclusive: Counter[str] = field(default_factory=Counter)  # on the stack
    groups: Counter[str] = field(default_factory=Counter)


def frame_name(frame: str) -> tuple[str, str]:
    """("function (path.py)", path) of one py-spy frame; py-spy already gives
    paths relative to their sys.path entry ("jobs/worker.py", "redis/...")."""
    m = FRAME.match(frame.strip())
    if not m:
        return frame.strip(), ""
    return f"{m.group('func')} ({m.group('path')})", m.group("path")


def group_of(path: str) -> str:
    for name, pattern in GROUPS:
        if pattern.search(path):
            return name
    return "other (stdlib, site-packages)"


def stacks_file(path: Path) -> Path | None:
    """`path`, or `path`.gz as docs/benchmark-runs/ keeps it; None: neither."""
    gz = path.with_name(path.name + ".gz")
    return path if path.exists() else gz if gz.exists() else None


def stack_lines(path: Path) -> list[str]:
    """The lines of a stacks file, gzipped or not."""
    if path.suffix == ".gz":
        return gzip.decompress(path.read_bytes()).decode(errors="replace").splitlines()
    return path.read_text(errors="replace").splitlines()


def load(path: Path) -> Profile:
    prof = Profile()
    for line in stack_lines(path):
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [frame_name(f) for f in stack.split(";")]
        frames = [f for f in frames if not f[0].startswith("process ")]
        if not frames:
            continue
        prof.total += n
        leaf, leaf_path = frames[-1]
        prof.own[leaf] += n
        prof.groups[group_of(leaf_path)] += n
        for name in {name for name, _ in frames}:
            prof.inclusive[name] += n
    return prof


def share(count: int, total: int) -> str:
    return f"{100.0 * count / total:.1f}%" if total else "n/a"


def markdown(prof: Profile, top: int = 15) -> list[str]:
    """The three tables: by component, top self frames, top project frames."""
    t = prof.total
    job = sum(c for f, c in prof.inclusive.items() if "(jobside.py" in f)
    out = [
        f"{t:,} samples of the worker's CPU (py-spy, 250 Hz); {share(job, t)} of "
        "them inside the bench job itself (jobside: its INCR on the harness "
        "Redis, the same work for every system).\n"
    ]
    out += ["| where (leaf frame) | share |", "|---|---|"]
    out += [f"| {g} | {share(c, t)} |" for g, c in prof.groups.most_common()]
    out += ["", "| top frames, own time | share |", "|---|---|"]
    out += [f"| `{f}` | {share(c, t)} |" for f, c in prof.own.most_common(top)]
    mine = [
        (f, c)
        for f, c in prof.inclusive.most_common()
        if "(jobs/" in f and not ROOTS.search(f.rpartition("(")[2])
    ]
    out += ["", "| django-jobs functions, inclusive | share |", "|---|---|"]
    out += [f"| `{f}` | {share(c, t)} |" for f, c in mine[:top]]
    return [*out, ""]


if __name__ == "__main__":
    print("\n".join(markdown(load(Path(sys.argv[1])))))
