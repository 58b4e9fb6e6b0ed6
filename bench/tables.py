"""What report.py and report_peers.py share: reading runs, medians, cells.

Every figure is the median over a configuration's repetitions; `fmt` puts
[min-max] beside it.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

JOBS = "jobs-c100"  # the headline django-jobs configuration

Agg = tuple[float, float, float, int]  # median, min, max, repetitions
Runs = dict[str, list[dict[str, Any]]]


# --------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------
def get(d: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(d, dict) or part not in d:
            return None
        d = d[part]
    return d


def agg(runs: list[dict[str, Any]], path: str) -> Agg | None:
    vals = [v for v in (get(r, path) for r in runs) if isinstance(v, (int, float))]
    if not vals:
        return None
    return statistics.median(vals), min(vals), max(vals), len(vals)


def med(runs: Runs, cfg: str, path: str) -> float | None:
    a = agg(runs.get(cfg, []), path)
    return None if a is None else a[0]


def fmt(a: Agg | None, digits: int = 0, spread: bool = True) -> str:
    if a is None:
        return "n/a"
    mid, lo, hi, k = a
    f = f"{{:,.{digits}f}}"
    s = f.format(mid)
    if spread and k > 1:
        s += f" [{f.format(lo)}-{f.format(hi)}]"
    return s


class Doc:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def w(self, *lines: str) -> None:
        self.lines.extend(lines)

    def table(self, head: list[str], rows: list[list[str]], note: str = "") -> None:
        if note:
            self.w(note, "")
        self.w("| " + " | ".join(head) + " |", "|" + "---|" * len(head))
        self.w(*("| " + " | ".join(r) + " |" for r in rows))
        self.w("")


@dataclass(frozen=True)
class Metric:
    """One row of the headline table."""

    label: str
    path: str  # in the django-jobs run
    better: str  # "higher" or "lower"
    digits: int = 0
    jobs_cfg: str = JOBS
    peer_path: str | None = None  # in the peers' runs, when it differs
    peer_sync_only: bool = False  # peers with a sync enqueue API only


# Peers whose enqueue API is plain sync code (their one-at-a-time enqueue is
# what django-jobs' enqueue() compares with).
SYNC_PRODUCERS = ("celery", "dramatiq", "sidekiq")


def ratio(mine: float | None, peer: float | None) -> str:
    if mine is None or peer is None or peer == 0:
        return "n/a"
    return f"{mine / peer:.2f}x"


def peer_value(runs: Runs, cfg: str, m: Metric) -> Agg | None:
    rs = runs.get(cfg, [])
    if not rs:
        return None
    if m.peer_sync_only and rs[0]["system"] not in SYNC_PRODUCERS:
        if m.peer_path and m.peer_path.startswith("enqueue"):
            return None  # no sync enqueue API
        if m.peer_path and m.peer_path.startswith("result_wait"):
            # Celery's get() is its sync API; arq has no sync one.
            return None
    return agg(rs, m.peer_path or m.path)


Col = tuple[str, Callable[[list[dict[str, Any]]], str]]


def per_config(
    doc: Doc, runs: Runs, cfgs: list[str], title: str, cols: list[Col], note: str = ""
) -> None:
    doc.w(f"### {title}\n")
    rows = [[c] + [fn(runs[c]) for _, fn in cols] for c in cfgs]
    doc.table(["config"] + [c[0] for c in cols], rows, note)


def col(label: str, path: str, digits: int = 0, spread: bool = True) -> Col:
    return (label, lambda r: fmt(agg(r, path), digits, spread))


def ratio_table(
    runs: Runs,
    skipped: dict[str, str],
    metrics: list[Metric],
    peers: list[tuple[str, str]],
) -> tuple[list[str], list[list[str]]]:
    """Head and rows of django-jobs against `peers` ((config, label) pairs):
    each peer's median and django-jobs ÷ peer, one row a metric."""
    head = ["metric", "better", f"django-jobs ({JOBS} unless named)"]
    for _, name in peers:
        head += [name, "ratio"]
    rows = []
    for m in metrics:
        mine = agg(runs.get(m.jobs_cfg, []), m.path)
        label = m.label if m.jobs_cfg == JOBS else f"{m.label} [{m.jobs_cfg}]"
        row = [label, m.better, fmt(mine, m.digits)]
        for cfg, _ in peers:
            if cfg in skipped:
                row += ["n/a (not installed)", "n/a"]  # why: the summary table
                continue
            peer = peer_value(runs, cfg, m)
            row += [fmt(peer, m.digits), ratio(mine and mine[0], peer and peer[0])]
        rows.append(row)
    return head, rows
