"""Prometheus metrics at /metrics as prometheus-fastapi-instrumentator documents them, and the
predictions by model and species; PROMETHEUS_MULTIPROC_DIR adds up several workers'."""

import os

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_fastapi_instrumentator import Instrumentator, metrics

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
UNTRACKED = ["/metrics", "/static.*", "/docs.*", "/redoc", "/openapi.json"]


def instrument(app: FastAPI) -> Counter:
    """Record every request of ``app``, serve /metrics; return the predictions counter."""
    registry = CollectorRegistry()  # one per app, so that apps in one process (tests) differ
    instrumentator = Instrumentator(
        registry=registry, should_group_status_codes=True, excluded_handlers=UNTRACKED
    )
    instrumentator.add(metrics.requests(registry=registry))
    instrumentator.add(
        metrics.latency(registry=registry, should_include_status=False, buckets=LATENCY_BUCKETS)
    )
    instrumentator.instrument(app).expose(
        app, tags=["monitoring"], summary="Prometheus metrics", response_class=PlainTextResponse
    )
    return Counter(
        "penguin_predictions",
        "Predictions returned, by model and predicted species",
        labelnames=("model", "species"),
        registry=registry,
    )


def prediction_counts(counter: Counter) -> dict[tuple[str, str], int]:
    """{(model, species): predictions} from the counter, every worker's in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        families = registry.collect()
    else:
        families = counter.collect()
    totals: dict[tuple[str, str], int] = {}
    for family in families:
        for sample in family.samples:
            if sample.name == "penguin_predictions_total":
                key = (sample.labels["model"], sample.labels["species"])
                totals[key] = totals.get(key, 0) + round(sample.value)
    return dict(sorted(totals.items()))
