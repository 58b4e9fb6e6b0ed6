"""Settings: the backend's OPTIONS (parsed once) and the JOBS_* settings (lazy).

TASKS = {
    "default": {
        "BACKEND": "jobs.backend.JobsBackend",
        "QUEUES": ["default", "reports"],
        "OPTIONS": {"REDIS_URL": "redis://localhost:6379/0"},
    }
}
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, TypedDict
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured
from django.tasks.exceptions import InvalidTaskBackend
from django.utils.module_loading import import_string


class OptionsDict(TypedDict, total=False):
    REDIS_URL: str
    REDIS_OPTIONS: dict[str, Any]
    RESULTS_CACHE: str | None
    RESULT_TTL: int
    LEASE: float
    MAX_ATTEMPTS: int
    TIMEOUT: float | None
    MAX_PAYLOAD: int
    MAX_RESULT: int
    EXPIRES: float
    POLL_INTERVAL: float
    IMPORTS: list[str]
    STRICT_REDIS: bool
    ARQ_RESULTS: bool
    WAIT_REPLICAS: int
    WAIT_TIMEOUT: float


CLUSTER_UNSUPPORTED = (
    "Redis Cluster is not supported yet; use one Redis, or Sentinel "
    "(redis+sentinel://). See docs/deployment.md."
)
SENTINEL_SCHEME = "redis+sentinel"
REDIS_SCHEMES = ("redis", "rediss", "unix", SENTINEL_SCHEME)
SENTINEL_PORT = 26379
SENTINEL_FORM = "redis+sentinel://[user:password@]host:26379,host2:26379/<master>/<db>"


@dataclass(frozen=True, slots=True, kw_only=True)
class SentinelAddress:
    """Where a `redis+sentinel://` URL points: sentinels, master name, db, ACL."""

    sentinels: tuple[tuple[str, int], ...]
    service: str  # the master's name, as in `sentinel monitor <name> ...`
    db: int = 0
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> SentinelAddress:
        """Parse a Sentinel URL, raising InvalidTaskBackend on bad input."""
        parts = urlsplit(url)
        if parts.scheme != SENTINEL_SCHEME:
            raise _bad_sentinel(url, f"the scheme must be {SENTINEL_SCHEME}://")
        userinfo, _, hosts = parts.netloc.rpartition("@")
        username, _, password = userinfo.partition(":")
        segments = [s for s in parts.path.split("/") if s]
        if not segments or len(segments) > 2:
            raise _bad_sentinel(url, "give the master's name, then an optional db")
        if len(segments) == 2 and not segments[1].isdigit():
            raise _bad_sentinel(url, f"the db must be a number, not {segments[1]!r}")
        return cls(
            sentinels=tuple(_host_port(url, h) for h in hosts.split(",")),
            service=unquote(segments[0]),
            db=int(segments[1]) if len(segments) == 2 else 0,
            username=unquote(username) or None,
            password=unquote(password) or None,
        )


def _host_port(url: str, text: str) -> tuple[str, int]:
    host, colon, port = text.rpartition(":")
    if not colon or "]" in port:  # no port given (an IPv6 address has colons)
        host, port = text, str(SENTINEL_PORT)
    host = host.strip("[]")
    if not host or not port.isdigit():
        raise _bad_sentinel(url, f"{text!r} is not host:port")
    return host, int(port)


def _bad_sentinel(url: str, why: str) -> InvalidTaskBackend:
    return InvalidTaskBackend(
        f"REDIS_URL {redact(url)!r}: {why}; expected {SENTINEL_FORM}."
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class JobsOptions:
    """Parsed OPTIONS; each field documents its OPTIONS key and default."""

    redis_url: str = "redis://localhost:6379/0"  # REDIS_URL
    # REDIS_OPTIONS: extra redis-py keyword arguments (TLS files, timeouts).
    redis_options: dict[str, Any] = field(default_factory=dict)
    # RESULTS_CACHE: a CACHES alias; None builds a Redis cache on REDIS_URL.
    results_cache: str | None = None
    result_ttl: int = 86_400  # RESULT_TTL, seconds
    lease: float = (
        30.0  # LEASE, seconds a claimed job stays claimed without a heartbeat
    )
    # MAX_ATTEMPTS: runs started per job, for tasks that set none (as arq's max_tries)
    max_attempts: int = 3
    timeout: float | None = None  # TIMEOUT, seconds, default for tasks that set none
    max_payload: int = 256 * 1024  # MAX_PAYLOAD, bytes of serialized job
    # MAX_RESULT, bytes of a result record (arguments, return value, errors)
    max_result: int = 1024 * 1024
    expires: float = 86_400.0  # EXPIRES, seconds a job may wait past its due time
    poll_interval: float = 2.0  # POLL_INTERVAL, seconds between safety polls when idle
    imports: tuple[str, ...] = ()  # IMPORTS, task modules beyond apps' tasks.py
    strict_redis: bool = False  # STRICT_REDIS, refuse to start on an evicting Redis
    # ARQ_RESULTS: also write arq's result record (arq:result:<id>) of each
    # finished job, so arq's Job(id).status()/result() work for our jobs.
    arq_results: bool = True
    # WAIT_REPLICAS: replicas that must hold a job before enqueue returns (WAIT n)
    wait_replicas: int = 0
    wait_timeout: float = 1.0  # WAIT_TIMEOUT, seconds enqueue waits for them

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> JobsOptions:
        """Parse TASKS[alias]["OPTIONS"], raising InvalidTaskBackend on bad input."""
        known = {f.name.upper(): f.name for f in fields(cls)}
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise InvalidTaskBackend(
                f"Unknown OPTIONS {unknown}; expected some of {sorted(known)}."
            )
        values = {known[key]: value for key, value in options.items()}
        if "imports" in values:
            values["imports"] = tuple(values["imports"])
        parsed = cls(**values)
        parsed.validate()
        return parsed

    def validate(self) -> None:
        scheme = urlsplit(self.redis_url).scheme
        if scheme not in REDIS_SCHEMES:
            raise InvalidTaskBackend(
                f"REDIS_URL {redact(self.redis_url)!r} must start with redis://, "
                f"rediss://, unix:// or {SENTINEL_SCHEME}://."
            )
        if scheme == SENTINEL_SCHEME:
            SentinelAddress.parse(self.redis_url)
        elif "sentinel_kwargs" in self.redis_options:
            raise InvalidTaskBackend(
                "REDIS_OPTIONS['sentinel_kwargs'] is for a redis+sentinel:// REDIS_URL."
            )
        if self.wait_replicas < 0 or self.wait_timeout <= 0:
            raise InvalidTaskBackend(
                "WAIT_REPLICAS must be 0 or more and WAIT_TIMEOUT positive."
            )
        for name in ("result_ttl", "lease", "max_attempts", "max_payload", "expires"):
            if getattr(self, name) <= 0:
                raise InvalidTaskBackend(f"{name.upper()} must be positive.")
        if self.max_result < self.max_payload:
            raise InvalidTaskBackend(
                f"MAX_RESULT ({self.max_result}) must be at least MAX_PAYLOAD "
                f"({self.max_payload}): a result record carries the job's arguments."
            )
        if self.timeout is not None and self.timeout <= 0:
            raise InvalidTaskBackend("TIMEOUT must be positive or None.")
        if self.poll_interval <= 0:
            raise InvalidTaskBackend("POLL_INTERVAL must be positive.")

    @property
    def lease_ms(self) -> int:
        return int(self.lease * 1000)

    @property
    def sentinel(self) -> SentinelAddress | None:
        """The parsed Sentinel URL, or None for a single Redis."""
        if not self.redis_url.startswith(SENTINEL_SCHEME + "://"):
            return None
        return SentinelAddress.parse(self.redis_url)


def redact(url: str) -> str:
    """Return the URL with its password replaced, for logs and messages."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


CELERY_SCHEDULES = ("CELERY_BEAT_SCHEDULE", "CELERYBEAT_SCHEDULE")
# Beat schedules given in code (a jobs.celery app's conf.update()). Kept here,
# not in settings: in Celery's layout the settings package imports the app
# module, and Django builds its settings object anew after that import.
CODE_SCHEDULES: dict[str, Any] = {}


def celery_entry(item: Any) -> Any:
    """A Celery beat entry in JOBS_SCHEDULES' terms: `options={"queue": q}` is
    queue_name, `relative=False` the default; any other option is left for
    the schedule's validation to report (never dropped)."""
    if not isinstance(item, dict):
        return item
    item = dict(item)
    options = dict(item.pop("options", None) or {})
    if "queue" in options:
        item["queue_name"] = options.pop("queue")
    if options:
        item["options"] = options
    if item.get("relative") is False:
        del item["relative"]
    return item


class JobsSettings:
    """The JOBS_* settings, read at each access so override_settings applies.

    JOBS_SCHEDULES: static schedules, by name (see jobs.schedules.entries); default {}.
    JOBS_SCHEDULES_RECONCILE: seconds between a worker's full comparisons of the
        Schedule table with what it runs, which is how bulk update() and raw
        SQL reach running workers; default 30.
    JOBS_DASHBOARD_HISTORY: seconds of finished jobs the admin dashboard lists;
        default 86400. Records live RESULT_TTL seconds: raise both together.
    JOBS_DASHBOARD_ROWS: finished jobs per dashboard page; default 50.
    JOBS_METRICS_TOKEN: the bearer token Prometheus scrapes the metrics view
        with; default None (logged-in staff only).
    JOBS_WORKER_HOOKS: arq's worker hooks by name (`on_startup`, `on_shutdown`,
        `on_job_start`, `on_job_end`), each a dotted path to a coroutine
        function taking arq's `ctx` dict; run by `jobs_worker` and by `arq
        jobs.arq.WorkerSettings` alike; default {}.
    JOBS_RATE_LIMITS: rate limits by task path ("app.tasks.fetch": "100/m"),
        over the tasks' own `rate_limit` (None lifts one); default {}.
    """

    HOOKS = ("on_startup", "on_shutdown", "on_job_start", "on_job_end")

    @property
    def SCHEDULES(self) -> dict[str, Any]:
        """JOBS_SCHEDULES, and Celery's beat schedules (CELERY_BEAT_SCHEDULE,
        CELERYBEAT_SCHEDULE, then a Celery app's conf.update()) under it, so
        moved settings and code run as they are."""
        from django.conf import settings

        found: dict[str, Any] = {}
        for items in [getattr(settings, name, None) for name in CELERY_SCHEDULES]:
            found.update(
                {key: celery_entry(item) for key, item in (items or {}).items()}
            )
        found.update({key: celery_entry(item) for key, item in CODE_SCHEDULES.items()})
        found.update(getattr(settings, "JOBS_SCHEDULES", None) or {})
        return found

    @property
    def SCHEDULES_RECONCILE(self) -> float:
        from django.conf import settings

        return float(getattr(settings, "JOBS_SCHEDULES_RECONCILE", 30.0))

    @property
    def DASHBOARD_HISTORY(self) -> float:
        from django.conf import settings

        return float(getattr(settings, "JOBS_DASHBOARD_HISTORY", 86_400))

    @property
    def DASHBOARD_ROWS(self) -> int:
        from django.conf import settings

        return int(getattr(settings, "JOBS_DASHBOARD_ROWS", 50))

    @property
    def METRICS_TOKEN(self) -> str | None:
        from django.conf import settings

        token = getattr(settings, "JOBS_METRICS_TOKEN", None)
        return str(token) if token else None

    @property
    def WORKER_HOOKS(self) -> dict[str, Any]:
        """The hooks, imported; ImproperlyConfigured for an unknown name."""
        from django.conf import settings

        hooks = dict(getattr(settings, "JOBS_WORKER_HOOKS", None) or {})
        unknown = sorted(set(hooks) - set(self.HOOKS))
        if unknown:
            raise ImproperlyConfigured(
                f"JOBS_WORKER_HOOKS: unknown hooks {unknown}; expected some of "
                f"{list(self.HOOKS)}."
            )
        return {name: import_string(path) for name, path in hooks.items()}

    @property
    def RATE_LIMITS(self) -> dict[str, str | None]:
        from django.conf import settings

        return dict(getattr(settings, "JOBS_RATE_LIMITS", None) or {})


jobs_settings = JobsSettings()
