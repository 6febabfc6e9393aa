"""Your API's numbers for Prometheus: `GET /metrics`, in the text format Prometheus reads.

Why: the log tells the story of one request; metrics tell how the whole API is doing right
now. How many requests, with which status; how fast (a latency histogram); how often the
model failed and the fallback answered; which fields arrived messy and were cleaned; which
model version is serving. Prometheus reads (scrapes) them every few seconds and Grafana draws
them. Read them yourself on the server:

    curl -s http://127.0.0.1:$PORT/metrics | grep ^api_

The numbers live in this process's memory, in a registry of this app's own
(`app.extensions["metrics"]`), and start at zero when the API restarts (Prometheus'
`rate()` copes with that). waitress serves with several threads in ONE process, so one
registry sees every request. A server with several worker processes (`gunicorn -w 4`) would
need prometheus_client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR), or each scrape would
see one worker's share only.

Every label takes its values from a small fixed set (routes, status codes, the model's own
feature names): a field a request invents is counted as `extra`, so no request can add new
series and fill the memory.
"""

import time
from collections.abc import Iterator

from flask import Flask, Response, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily

# Seconds. The game's customer waits 1 s at most: the buckets are finer below that.
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    """The API's metrics: defined once per app, counted by the hooks below."""

    def __init__(self, app: Flask):
        """Define the metrics in a registry of the app's own (tests build many apps)."""
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "api_requests",
            "HTTP requests answered, by route and status code.",
            ["route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "api_request_duration_seconds",
            "Time from request to answer, by route.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.predictions = Counter(
            "api_predictions",
            "Predictions answered, by the class predicted (0 or 1).",
            ["pred"],
            registry=self.registry,
        )
        self.fallbacks = Counter(
            "api_fallbacks",
            "Predictions where the model failed and the fallback (majority class) answered.",
            registry=self.registry,
        )
        self.cleaned = Counter(
            "api_cleaned_fields",
            "Fields that needed cleaning, by field and what was done (see modules/features.py).",
            ["field", "why"],
            registry=self.registry,
        )
        self.registry.register(_StateCollector(app))


class _StateCollector:
    """Read at each scrape: the model version serving now, and the database writer's state."""

    def __init__(self, app: Flask):
        """Keep the app: its model can be reloaded while it runs."""
        self.app = app

    def collect(self) -> Iterator[InfoMetricFamily | GaugeMetricFamily]:
        """The metrics of this moment (prometheus_client calls this on every scrape)."""
        _, metadata = self.app.extensions["model"].current()
        model = InfoMetricFamily("api_model", "The model serving now.")
        model.add_metric([], {"version": str(metadata.get("version"))})
        yield model
        writer = self.app.extensions["db_writer"]
        for name, value, text in (
            ("api_db_queued", writer.queue.qsize(), "Predictions waiting to be saved."),
            ("api_db_written", writer.written, "Predictions saved since the start."),
            ("api_db_dropped", writer.dropped, "Predictions lost (the queue was full)."),
        ):
            yield GaugeMetricFamily(name, text, value=value)


def init_app(app: Flask) -> None:
    """Count every request (status and latency) and serve `GET /metrics`."""
    disable_created_metrics()  # no `..._created` line beside each counter: noise to a reader
    app.extensions["metrics"] = Metrics(app)
    app.before_request(_start_timer)
    app.after_request(_count_request)
    app.add_url_rule("/metrics", "metrics", _serve_metrics, methods=["GET"])


def record_prediction(pred: int, fallback: bool, problems: list[str]) -> None:
    """Count one answered prediction: its class, a fallback, and each field cleaned."""
    metrics = current_app.extensions["metrics"]
    metrics.predictions.labels(pred=str(pred)).inc()
    if fallback:
        metrics.fallbacks.inc()
    for note in problems:  # "age:missing", "extra:<any name>", "features:not_an_object"
        field, _, why = note.partition(":")
        if field == "extra":  # the name is the client's choice: never a label
            why = "extra"
        metrics.cleaned.labels(field=field, why=why).inc()


def _start_timer() -> None:
    """Note when the request came in."""
    g.metrics_started = time.perf_counter()


def _count_request(response: Response) -> Response:
    """Count the answered request by route and status; time it (errors too)."""
    metrics = current_app.extensions["metrics"]
    route = request.url_rule.rule if request.url_rule is not None else "unknown"
    metrics.requests.labels(route=route, status=str(response.status_code)).inc()
    started = g.get("metrics_started")
    if started is not None:
        metrics.latency.labels(route=route).observe(time.perf_counter() - started)
    return response


def _serve_metrics() -> tuple[bytes, int, dict[str, str]]:
    """All metrics in Prometheus' text format."""
    body = generate_latest(current_app.extensions["metrics"].registry)
    return body, 200, {"Content-Type": CONTENT_TYPE_LATEST}
