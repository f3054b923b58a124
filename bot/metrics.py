"""The bot's Prometheus metrics: one registry, served at ``GET /metrics`` by `bot.server`.

Every metric is defined here (one obvious place); the code that counts imports the metric and
calls ``.labels(...).inc()`` / ``.observe(...)``. Label values are short fixed words or Slack /
Procore method names, never ids, names or URLs (bounded cardinality; nothing secret).

For the Procore client and the webhook endpoint (to be wired by their owners):

- ``PROCORE_CALLS.labels(endpoint="commitments", outcome="ok").inc()`` once per HTTP call;
  ``endpoint`` is the resource name (not the URL: no ids, no signed query strings),
  ``outcome`` one of `OUTCOMES` (``ok``, ``client_error``, ``server_error``, ``ratelimited``,
  ``connection_error``, ``retried``).
- ``WEBHOOK_DELIVERIES.labels(resource="Commitments", outcome="accepted").inc()`` once per
  delivery received; ``outcome`` one of ``accepted``, ``duplicate``, ``rejected``, ``failed``
  (``resource`` is ``unknown`` when the delivery was refused before its resource was known).
- ``WEBHOOK_SECONDS.labels("answer").observe(seconds)`` (and ``"database"``) per delivery.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

REGISTRY = CollectorRegistry(auto_describe=True)
OUTCOMES = ("ok", "client_error", "server_error", "ratelimited", "connection_error", "retried")

JOBS = Gauge(
    "invoice_backups_jobs",
    "Jobs in the database by kind and state (read at each scrape).",
    ["kind", "state"],
    registry=REGISTRY,
)
COMPILE_SECONDS = Histogram(
    "invoice_backups_compile_duration_seconds",
    "Wall-clock time of one backup compile (database read, PDF work in the pool, write).",
    buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600),
    registry=REGISTRY,
)
COMPILE_BYTES = Histogram(
    "invoice_backups_compile_size_bytes",
    "Size of each compiled backup PDF.",
    buckets=(100e3, 500e3, 1e6, 5e6, 10e6, 25e6, 50e6, 100e6, 250e6, 500e6, 1e9),
    registry=REGISTRY,
)
SLACK_CALLS = Counter(
    "invoice_backups_slack_api_calls_total",
    "Slack Web API calls by method and final outcome (ok, or Slack's error code family).",
    ["method", "outcome"],
    registry=REGISTRY,
)
SLACK_RETRIES = Counter(
    "invoice_backups_slack_api_retries_total",
    "Slack Web API retries by method and reason (ratelimited: a 429 honouring Retry-After; "
    "server_error: a 5xx; connection_error: a reset or a timeout).",
    ["method", "reason"],
    registry=REGISTRY,
)
ACK_SECONDS = Histogram(
    "invoice_backups_slack_ack_seconds",
    "Time from receiving a Slack request to answering it (the 3-second ack budget).",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2, 3, 5),
    registry=REGISTRY,
)
REJECTED_REQUESTS = Counter(
    "invoice_backups_slack_rejected_requests_total",
    "Slack requests refused before any listener ran (bad_signature, stale, malformed).",
    ["reason"],
    registry=REGISTRY,
)
PROCORE_CALLS = Counter(
    "invoice_backups_procore_calls_total",
    "Procore REST calls by endpoint (resource name) and outcome.",
    ["endpoint", "outcome"],
    registry=REGISTRY,
)
WEBHOOK_DELIVERIES = Counter(
    "invoice_backups_webhook_deliveries_total",
    "Procore webhook deliveries received, by resource and outcome.",
    ["resource", "outcome"],
    registry=REGISTRY,
)
WEBHOOK_SECONDS = Histogram(
    "invoice_backups_webhook_seconds",
    "Procore webhook endpoint, in process: 'answer' from the request's arrival to the answer; "
    "'database' the part spent storing the delivery and queueing its pass.",
    ["part"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    registry=REGISTRY,
)

LEFTOVERS_REMOVED = Counter(
    "invoice_backups_leftovers_removed_total",
    "Leftovers of stopped processes removed by the sweep (commands.sweep_leftovers), by kind: "
    "workspace (a killed compile's folder), partial (a partial download or write).",
    ["kind"],
    registry=REGISTRY,
)
LEFTOVER_BYTES_REMOVED = Counter(
    "invoice_backups_leftover_bytes_removed_total",
    "Bytes freed by the sweep of stopped processes' leftovers.",
    registry=REGISTRY,
)
LEFTOVER_SWEEP_FAILURES = Counter(
    "invoice_backups_leftover_sweep_failures_total",
    "Sweeps of leftovers that failed (the database did not answer) or left something they could "
    "not remove (permissions); the next sweep tries again.",
    registry=REGISTRY,
)


def set_job_counts(counts: Mapping[tuple[str, str], int]) -> None:
    """Replace the job gauge with ``(kind, state) → count`` (states absent now drop to zero)."""
    for labels in list(JOBS._metrics):  # noqa: SLF001 - reset series that vanished
        if labels not in counts:
            JOBS.labels(*labels).set(0)
    for (kind, state), count in counts.items():
        JOBS.labels(kind, state).set(count)


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus text format, and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
