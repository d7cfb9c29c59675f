"""Prometheus /metrics: request counts and latency per route, predictions per model/species."""

import re

from support.api import ADELIE


def _value(text: str, metric: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(metric + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_predictions_are_counted_by_model_and_species(client):
    client.post("/classify/svm", json=ADELIE)
    client.post("/classify/svm", json=ADELIE)
    client.post("/classify/randomforest/batch", json={"instances": [ADELIE] * 3})
    client.post("/classify/nosuch", json=ADELIE)

    text = client.get("/metrics").text

    assert _value(text, "penguin_predictions_total", model="svm", species="Adelie") == 2
    assert _value(text, "penguin_predictions_total", model="randomforest", species="Adelie") == 3
    assert "nosuch" not in re.findall(r'model="([^"]+)"', text)


def test_requests_and_latency_are_recorded_per_route_template(client):
    client.post("/classify/svm", json=ADELIE)
    client.get("/models")

    text = client.get("/metrics").text

    assert _value(text, "http_requests_total", handler="/classify/{model}", status="2xx") == 1
    assert _value(text, "http_requests_total", handler="/models", method="GET") == 1
    assert _value(text, "http_request_duration_seconds_count", handler="/classify/{model}") == 1


def test_bodies_refused_by_the_size_limit_are_counted(client):
    too_big = b"{" + b" " * (client.app.state.settings.max_body_bytes + 1) + b"}"

    refused = client.post(
        "/classify/svm", content=too_big, headers={"content-type": "application/json"}
    )
    text = client.get("/metrics").text

    assert refused.status_code == 413
    assert _value(text, "http_requests_total", method="POST", status="4xx") == 1
