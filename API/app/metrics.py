"""Prometheus metrics at /metrics: per-route requests and latency, predictions by model/species.

/metrics is served by prometheus-fastapi-instrumentator's ``expose`` (multiprocess-aware).
Requests and latency are recorded by the small ASGI middleware below, with prometheus_client
and the instrumentator's default metric names and labels: the instrumentator's own middleware
(a Request and Response object, a route search and an asyncio.gather per request) cost about
270 us of CPU per request here, a quarter of a single-row classify.

With several uvicorn workers each process has its own counters unless PROMETHEUS_MULTIPROC_DIR
names an (empty, writable) directory before the workers start: prometheus_client then keeps
the values in files there and /metrics aggregates all workers.
"""

from time import perf_counter

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_fastapi_instrumentator import Instrumentator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

METRICS_PATH = "/metrics"
UNTRACKED_HANDLERS = frozenset({METRICS_PATH, "/static", "/docs", "/redoc", "/openapi.json"})
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class RequestMetricsMiddleware:
    """Count requests by method, route template and status class; time them by route.

    The labelled children are looked up once per (method, route, status class): a
    ``labels()`` call takes a lock and checks its values, ~2 us each, twice per request.
    The keys are bounded (the server's methods, the app's routes, five classes) and a
    child, once created, lives as long as its metric.
    """

    def __init__(self, app: ASGIApp, requests: Counter, latency: Histogram) -> None:
        self.app = app
        self.requests = requests
        self.latency = latency
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        status = 500

        async def send_and_record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record_status)
        finally:
            route = scope.get("route")  # set by the router on a match
            handler = getattr(route, "path", None) or "none"
            if handler not in UNTRACKED_HANDLERS:
                requests, latency = self._children_for(scope["method"], handler, status // 100)
                requests.inc()
                latency.observe(perf_counter() - started)

    def _children_for(self, method: str, handler: str, status_class: int) -> tuple:
        key = (method, handler, status_class)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(method, handler, f"{status_class}xx"),
                self.latency.labels(method, handler),
            )
            self._children[key] = children
        return children


def instrument(app: FastAPI) -> Counter:
    """Add the request metrics and /metrics to ``app``; return the predictions counter."""
    # A registry per app, so that several apps in one process (tests) do not collide.
    registry = CollectorRegistry()
    requests = Counter(
        "http_requests_total",
        "Total number of requests by method, status and handler.",
        labelnames=("method", "handler", "status"),
        registry=registry,
    )
    latency = Histogram(
        "http_request_duration_seconds",
        "Latency of requests by handler (route template) and method.",
        labelnames=("method", "handler"),
        buckets=LATENCY_BUCKETS,
        registry=registry,
    )
    app.add_middleware(RequestMetricsMiddleware, requests=requests, latency=latency)
    Instrumentator(registry=registry).expose(
        app,
        endpoint=METRICS_PATH,
        tags=["monitoring"],
        response_class=PlainTextResponse,
        summary="Prometheus metrics",
    )
    return Counter(
        "penguin_predictions",
        "Predictions returned, by model and predicted species",
        labelnames=("model", "species"),
        registry=registry,
    )
