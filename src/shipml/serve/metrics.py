"""Prometheus metrics and the JSON access log of the server.

Metrics (``GET /metrics``, text exposition format):

- ``shipml_requests_total{model,version,route,status}``
- ``shipml_request_duration_seconds{model,route}`` (histogram)
- ``shipml_predictions_total{model,version,class}`` (one per predicted row; class "" for
  regression) and ``shipml_prediction_value{model,version}`` (histogram, regression)
- ``shipml_model_load_seconds{model,version}`` and ``shipml_prediction_log_dropped_total``
- ``shipml_model_load_failures_total{model,version}``: attempts to load a version the server could
  not load (it kept serving the one it had; see pool.py)

With several workers (``shipml serve --workers N``) each process writes its numbers to
``PROMETHEUS_MULTIPROC_DIR`` and any worker answers the scrape with the sum of all of them.

The access log is one JSON object per request on the ``shipml.access`` logger: time, method,
route template, status, duration, model, version, key *name*, rows, bytes. Never the body, the
query string, the key or the client address.
"""

from __future__ import annotations

import json
import logging
import os
import time

__all__ = ["Metrics", "ObserveMiddleware"]

access_log = logging.getLogger("shipml.access")

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_VALUE_BUCKETS = tuple(
    sorted({s * m * 10.0**e for s in (-1, 1) for e in range(-2, 8) for m in (1, 2.5, 5)} | {0.0})
)


class Metrics:
    """The server's metric objects, in their own registry (or the multi-process directory)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.registry = CollectorRegistry(auto_describe=True)
        reg = None if self.multiprocess else self.registry
        self.requests = Counter(
            "shipml_requests", "HTTP requests answered.",
            ["model", "version", "route", "status"], registry=reg,
        )  # fmt: skip
        self.latency = Histogram(
            "shipml_request_duration_seconds", "Time to answer a request.",
            ["model", "route"], buckets=_LATENCY_BUCKETS, registry=reg,
        )  # fmt: skip
        self.predictions = Counter(
            "shipml_predictions", "Predicted rows, by predicted class.",
            ["model", "version", "class"], registry=reg,
        )  # fmt: skip
        self.values = Histogram(
            "shipml_prediction_value", "Predicted values (regression).",
            ["model", "version"], buckets=_VALUE_BUCKETS, registry=reg,
        )  # fmt: skip
        self.load_seconds = Gauge(
            "shipml_model_load_seconds", "Time to load a model version.",
            ["model", "version"], registry=reg, multiprocess_mode="max",
        )  # fmt: skip
        self.load_failures = Counter(
            "shipml_model_load_failures", "Attempts to load a model version that failed.",
            ["model", "version"], registry=reg,
        )  # fmt: skip
        self.log_dropped = Counter(
            "shipml_prediction_log_dropped", "Prediction log rows that could not be written.",
            registry=reg,
        )  # fmt: skip

    def count_predictions(self, model: str, version: int, labels=None, values=None) -> None:
        if labels is not None:
            counts: dict[str, int] = {}
            for label in labels:
                key = str(label)
                counts[key] = counts.get(key, 0) + 1
            for key, n in counts.items():
                self.predictions.labels(model, str(version), key).inc(n)
        elif values is not None:
            histogram = self.values.labels(model, str(version))
            for value in values:
                histogram.observe(float(value))
            self.predictions.labels(model, str(version), "").inc(len(values))

    def exposition(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        if self.multiprocess:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class ObserveMiddleware:
    """ASGI middleware: latency + request metrics and one JSON access-log line per request.

    Route handlers put what they know in ``request.state`` (``model``, ``version``, ``key``,
    ``rows``); the route label is the matched template (``/v1/models/{name}/predict``), so a
    client cannot create unbounded label values by calling odd paths.
    """

    def __init__(self, app, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status, sent = 500, 0

        async def observed_send(message):
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            self._record(scope, status, time.perf_counter() - started, sent)

    def _record(self, scope, status: int, seconds: float, sent: int) -> None:
        route = getattr(scope.get("route"), "path", None) or "(unmatched)"
        if route == "/metrics":
            return
        state = scope.get("state") or {}
        model, version = state.get("model", ""), state.get("version", "")
        self.metrics.requests.labels(model, str(version), route, str(status)).inc()
        self.metrics.latency.labels(model, route).observe(seconds)
        if access_log.isEnabledFor(logging.INFO):
            entry = {
                "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "method": scope.get("method"),
                "route": route,
                "status": status,
                "ms": round(1000 * seconds, 3),
                "model": model or None,
                "version": version or None,
                "key": state.get("key"),
                "rows": state.get("rows"),
                "bytes_out": sent,
            }
            access_log.info(json.dumps(entry, separators=(",", ":")))
