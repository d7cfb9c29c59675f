"""Huge, deeply nested and oversized-batch requests: a clear 4xx, bounded memory, still serving."""

import json

import httpx
from support.api import ADELIE
from support.live_server import live_server
from support.load import server_rss_bytes

BIG_BODY_BYTES = 8 * 1024 * 1024  # twice the default MAX_BODY_BYTES
NESTING_DEPTH = 200_000
ROUNDS = 10
MAX_RSS_GROWTH_BYTES = 64 * 1024 * 1024


def _big_body() -> bytes:
    return json.dumps({**ADELIE, "padding": "x" * BIG_BODY_BYTES}).encode()


EXPECTED_STATUS = {
    "big body": 413,
    "big chunked body": 413,
    "deep nesting": 422,
    "deep nesting in a batch": 422,
    "batch above the limit": 413,
}


def _streamed(body: bytes, chunk: int = 64 * 1024):
    """The body in chunks with no Content-Length (chunked transfer encoding)."""
    for start in range(0, len(body), chunk):
        yield body[start : start + chunk]


def _hostile_requests(client: httpx.Client) -> list[tuple[str, int]]:
    big = _big_body()
    deep = ("[" * NESTING_DEPTH + "]" * NESTING_DEPTH).encode()
    headers = {"content-type": "application/json"}
    too_many_rows = {"instances": [ADELIE] * 1001}
    return [
        ("big body", client.post("/classify/svm", content=big, headers=headers).status_code),
        (
            "big chunked body",
            client.post("/classify/svm", content=_streamed(big), headers=headers).status_code,
        ),
        ("deep nesting", client.post("/classify/svm", content=deep, headers=headers).status_code),
        (
            "deep nesting in a batch",
            client.post("/classify/svm/batch", content=deep, headers=headers).status_code,
        ),
        (
            "batch above the limit",
            client.post("/classify/svm/batch", json=too_many_rows).status_code,
        ),
    ]


def test_hostile_bodies_get_4xx_and_leave_memory_bounded(server_env, tmp_path):
    with (
        live_server(server_env, tmp_path / "server.out") as server,
        server.client(timeout=60) as client,
    ):
        for _ in range(5):
            assert client.post("/classify/svm", json=ADELIE).status_code == 200
        baseline = server_rss_bytes(server)

        for _ in range(ROUNDS):
            outcomes = _hostile_requests(client)
            assert dict(outcomes) == EXPECTED_STATUS, outcomes

        growth = server_rss_bytes(server) - baseline
        assert growth < MAX_RSS_GROWTH_BYTES, f"RSS grew by {growth / 2**20:.0f} MiB"
        response = client.post("/classify/svm", json=ADELIE)
        assert response.status_code == 200
        assert response.json()["species_name"] == "Adelie"
