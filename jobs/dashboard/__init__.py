"""The jobs dashboard in Django's admin, and the Prometheus metrics view.

path("admin/jobs/dashboard/", jobs.dashboard.urls(admin.site)),
path("metrics", jobs.dashboard.metrics_view),
"""

from __future__ import annotations

from jobs.dashboard.exporter import metrics_view
from jobs.dashboard.views import urls

__all__ = ["metrics_view", "urls"]
