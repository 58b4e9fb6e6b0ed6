"""Kept for URLconfs written against it: the view is `jobs.dashboard.metrics_view`."""

from __future__ import annotations

from jobs.dashboard.exporter import JobsCollector, metrics_view

__all__ = ["JobsCollector", "metrics_view"]
