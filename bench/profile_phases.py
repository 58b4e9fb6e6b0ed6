"""Where the time goes, by phase of a job: py-spy samples turned into µs a job.

Reads the collapsed stacks py-spy writes (see profile_summary.py for the
format) and gives every sample to one phase: the innermost frame on its stack
that names a phase wins, so the job's own INCR (inside `execute`) counts as
the job, and a JSON encode inside `write_outcome` as the result encode (the
phases: phases.py). µs a job = the phase's share of the samples x the CPU a
job cost in the same run (psutil, measured by the harness).

Two corrections for how py-spy samples:

* with --nonblocking a stack is sometimes cut short at the top; a cut stack
  that still names a phase goes there, one that names none is split like the
  complete stacks that end in the same frame (the same socket write is made
  by the job, the claim and the batcher);
* a producer's samples outside its enqueue loop (interpreter start-up,
  django.setup, closing) are left out, as its CPU figure leaves them out.

Usage: python profile_phases.py RESULTS_DIR   (after bench/run's profile step)
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from phases import ASYNCIO, CUT, LOOP, OTHER, PRODUCER, WORKER, Phase
from profile_summary import frame_name, stack_lines, stacks_file

# The loop's entry frames: a sample whose last Python frame is one of these
# is in uvloop's C code (epoll, socket reads, callbacks, task steps).
LOOP_ENTRY = re.compile(
    r"^(Worker\.run|Runner\.run|run|run_until_complete|run_forever)$"
)
# The first frame of a stack py-spy did not cut: the main thread's, a thread's.
ROOTS = ("<module>", "Thread._bootstrap")
# Leaf frames by the kind of Redis I/O they are.
IO_KINDS = [
    ("socket write", re.compile(r"writelines|write|sendall|send|send_packed_command")),
    ("reply read", re.compile(r"read.*|_?parse.*|can_read.*|_wait_for_data|feed")),
]


def io_kind(func: str, path: str) -> str | None:
    if not re.search(r"^(redis/|asyncio/streams\.py|socket\.py)", path):
        return None
    short = func.rpartition(".")[2]
    return next((kind for kind, pat in IO_KINDS if pat.fullmatch(short)), None)


@dataclass
class Breakdown:
    phases: list[Phase]
    total: float = 0.0  # samples counted
    excluded: int = 0  # outside the measured loop (producers)
    cut: int = 0  # stacks cut short by py-spy
    by_phase: Counter[str] = field(default_factory=Counter)
    io: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    own: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))

    def add(self, phase: str, leaf: tuple[str, str], n: float) -> None:
        self.total += n
        self.by_phase[phase] += n  # type: ignore[assignment]
        kind = io_kind(*leaf)
        if kind:
            self.io[phase][kind] += n  # type: ignore[assignment]
        self.own[phase][f"{leaf[0]} ({leaf[1]})"] += n  # type: ignore[assignment]


def _phase_of(frames: list[tuple[str, str]], phases: list[Phase]) -> str | None:
    found = None
    for func, path in frames:
        for phase in phases:
            if phase.matches(func, path):
                found = phase.name
                break
    return found


def _fallback(leaf: tuple[str, str]) -> str:
    func, path = leaf
    if LOOP_ENTRY.match(func) and re.search(r"^(arq|asyncio|uvloop)/", path):
        return LOOP
    return ASYNCIO if path.startswith("asyncio/") else OTHER


def _frames(stack: str) -> list[tuple[str, str]]:
    frames = [frame_name(f) for f in stack.split(";")]
    return [(name.rpartition(" (")[0], path) for name, path in frames if path]


def load(path: Path, phases: list[Phase], scope: str | None = None) -> Breakdown:
    """scope: a function every counted sample is inside (a producer's loop);
    samples in the loop's C code and cut stacks count too."""
    bd = Breakdown(phases)
    pending: list[tuple[tuple[str, str], int]] = []
    for line in stack_lines(path):
        stack, _, count = line.rpartition(" ")
        frames = _frames(stack)
        if not frames or not count.isdigit():
            continue
        n, leaf = int(count), frames[-1]
        complete = frames[0][0] in ROOTS
        bd.cut += 0 if complete else n
        if _fallback(leaf) == LOOP:  # nothing of ours runs: the loop's C code
            bd.add(LOOP, leaf, n)
            continue
        phase = _phase_of(frames, phases)
        in_scope = scope is None or any(re.fullmatch(scope, f) for f, _ in frames)
        if complete and not in_scope:
            bd.excluded += n
        elif phase is not None:
            bd.add(phase, leaf, n)
        elif complete:
            bd.add(_fallback(leaf), leaf, n)
        else:
            pending.append((leaf, n))
    _split_cut(bd, pending)
    return bd


def _split_cut(bd: Breakdown, pending: list[tuple[tuple[str, str], int]]) -> None:
    """Give cut stacks naming no phase to the phases whose complete stacks end
    in the same frame, in proportion."""
    for leaf, n in pending:
        name = f"{leaf[0]} ({leaf[1]})"
        weights = {p: own[name] for p, own in bd.own.items() if own[name]}
        total = sum(weights.values())
        if not total:
            bd.add(CUT, leaf, n)
            continue
        for phase, w in weights.items():
            bd.add(phase, leaf, n * w / total)


def _us(count: float, bd: Breakdown, per_unit: float | None) -> str:
    if per_unit is None or not bd.total:
        return "n/a"
    return f"{count / bd.total * per_unit:,.1f}"


def _pct(count: float, total: float) -> str:
    return f"{100.0 * count / total:.1f}%" if total else "n/a"


def table(bd: Breakdown, per_unit: float | None, unit: str, top: int = 3) -> list[str]:
    """One row a phase: share, µs a unit, Redis socket I/O in it, top own frames."""
    covers = {p.name: p.covers for p in bd.phases}
    covers.update({LOOP: "epoll, socket reads, callbacks, task steps", CUT: ""})
    head = f"| phase | share | µs / {unit} | of which socket write / reply read µs "
    out = [head + "| top own-time frames | what it covers |", "|---" * 6 + "|"]
    for name, count in bd.by_phase.most_common():
        io = bd.io.get(name, Counter())
        io_cell = " / ".join(
            _us(io[k], bd, per_unit) if io[k] else "-" for k, _ in IO_KINDS
        )
        own = bd.own[name]
        frames = ", ".join(
            f"`{f.split(' (')[0]}` {_pct(c, count)}" for f, c in own.most_common(top)
        )
        cells = [name, _pct(count, bd.total), _us(count, bd, per_unit), io_cell]
        out.append("| " + " | ".join([*cells, frames, covers.get(name, "")]) + " |")
    total_us = "n/a" if per_unit is None else f"{per_unit:,.1f}"
    out.append(f"| **total** | 100% | **{total_us}** | | | |")
    return out


@dataclass(frozen=True)
class Part:
    """One profile file of the profile run and the measure its µs come from."""

    file: str
    phases: list[Phase]
    scope: str | None  # see load()
    key: str  # the phase of the run holding the CPU figure
    metric: str
    unit: str
    title: str


PARTS = [
    Part(
        "jobs-c100.pyspy.txt",
        WORKER,
        None,
        "e2e",
        "worker_cpu_us_per_job",
        "job",
        "Worker CPU a job (end-to-end phase)",
    ),
    Part(
        "jobs-c100.producer.txt",
        PRODUCER,
        r"Producer\.single",
        "enqueue_single",
        "producer_cpu_us_per_job",
        "enqueue",
        "Producer CPU an enqueue, `await task.aenqueue()`",
    ),
    Part(
        "jobs-c100.producer-sync.txt",
        PRODUCER,
        r"SyncProducer\.single",
        "enqueue_sync",
        "producer_cpu_us_per_job",
        "enqueue",
        "Producer CPU an enqueue, `task.enqueue()`",
    ),
]


def markdown(root: Path) -> list[str]:
    """The phase tables of a results folder's profile run (bench/run step 5)."""
    prof = root / "profile"
    run_file = prof / "jobs-c100.json"
    if not run_file.exists():
        return []
    run = json.loads(run_file.read_text())
    out: list[str] = []
    for part in PARTS:
        stacks = stacks_file(prof / part.file)
        if stacks is None:
            continue
        bd = load(stacks, part.phases, part.scope)
        measured = run.get(part.key) or {}
        per_unit = measured.get(part.metric)
        seen = bd.total + bd.excluded
        out.append(f"#### {part.title}, jobs-c100, N {run.get('n', 0):,}\n")
        out.append(
            f"{bd.total:,.0f} samples at 250 Hz ({_pct(bd.cut, seen)} cut short, "
            f"given out as described; {bd.excluded:,} outside the measured loop "
            f"left out). Measured in this run: {per_unit or 0:,.1f} µs of CPU per "
            f"{part.unit}, {measured.get('jobs_per_s') or 0:,.0f} jobs/s under "
            "py-spy.\n"
        )
        out += [*table(bd, per_unit, part.unit), ""]
    return out


if __name__ == "__main__":
    print("\n".join(markdown(Path(sys.argv[1]))))
