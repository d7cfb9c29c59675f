"""Error amplification (issue 9, 1): the worst bodies that fit in MAX_BODY_BYTES get a small,
bounded 422 quickly, never hold the event loop, and leave memory bounded."""

import json
import subprocess
import sys
import time

import pytest
from support.api import ADELIE
from support.live_server import live_server
from support.load import server_rss_bytes

from app.core.config import Settings
from penguin_contract import FEATURES

MAX_BODY_BYTES = Settings().max_body_bytes
MAX_BATCH = Settings().max_batch_size
MAX_ERROR_BYTES = 8 * 1024
MAX_RSS_GROWTH_BYTES = 64 * 1024 * 1024
HEALTH_PROBE = """
import sys, time, httpx
worst, end = 0.0, time.monotonic() + float(sys.argv[2])
with httpx.Client(base_url=sys.argv[1], timeout=10) as client:
    while time.monotonic() < end:
        started = time.perf_counter()
        assert client.get("/health").status_code == 200
        worst = max(worst, time.perf_counter() - started)
        time.sleep(0.005)
print(worst)
"""


def _filled(make, size: int = MAX_BODY_BYTES - 64) -> bytes:
    """The largest body ``make(pad)`` gives within ``size`` bytes (pad: a string length)."""
    low, high = 0, size
    while low < high:
        middle = (low + high + 1) // 2
        if len(json.dumps(make(middle))) <= size:
            low = middle
        else:
            high = middle - 1
    return json.dumps(make(low)).encode()


WORST_BODIES = {
    # 7 'missing' errors per row, padded with an ignored key
    "instances: empty objects": lambda pad: {
        "instances": [{"x": "x" * (pad // MAX_BATCH)}] * MAX_BATCH
    },
    # a long string in every field of every row (each error echoes its input)
    "instances: long strings": lambda pad: {
        "instances": [dict.fromkeys(FEATURES, "y" * (pad // (7 * MAX_BATCH)))] * MAX_BATCH
    },
    "columns: long strings": lambda pad: {
        "columns": {name: ["z" * (pad // (7 * MAX_BATCH))] * MAX_BATCH for name in FEATURES}
    },
    "columns: nulls and a long extra key": lambda pad: {
        "columns": {name: [None] * MAX_BATCH for name in FEATURES},
        "p" * max(pad, 1): 0,
    },
    "instances: nested lists": lambda pad: {
        "instances": [
            dict.fromkeys(
                FEATURES,
                json.loads(
                    "[" * (pad // (14 * MAX_BATCH) or 1) + "]" * (pad // (14 * MAX_BATCH) or 1)
                ),
            )
        ]
        * MAX_BATCH
    },
}


def _probe_health(base_url: str, seconds: float) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", HEALTH_PROBE, base_url, str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("name", WORST_BODIES)
def test_the_worst_bodies_get_a_small_422_and_never_hold_the_event_loop(name, server_env, tmp_path):
    body = _filled(WORST_BODIES[name])
    assert MAX_BODY_BYTES - 16 * 1024 < len(body) <= MAX_BODY_BYTES
    with (
        live_server(server_env, tmp_path / "server.log") as server,
        server.client(timeout=60) as client,
    ):
        assert client.post("/classify/svm", json=ADELIE).status_code == 200
        baseline = server_rss_bytes(server)
        prober = _probe_health(server.base_url, seconds=2.0)
        time.sleep(0.5)  # the prober is connected and measuring
        answers, took = [], []
        while prober.poll() is None:
            started = time.perf_counter()
            answers.append(
                client.post(
                    "/classify/svm/batch",
                    content=body,
                    headers={"content-type": "application/json"},
                )
            )
            took.append(time.perf_counter() - started)
        worst_health = float(prober.communicate()[0])
        growth = server_rss_bytes(server) - baseline

    assert {answer.status_code for answer in answers} == {422}
    largest = max(len(answer.content) for answer in answers)
    assert largest <= MAX_ERROR_BYTES, f"a {len(body)}-byte body got a {largest}-byte error"
    detail = answers[0].json()
    assert len(detail["detail"]) == 20 and detail["omitted"] > 0
    assert worst_health < 0.1, f"/health waited {worst_health * 1000:.0f} ms"
    assert growth < MAX_RSS_GROWTH_BYTES, f"RSS grew by {growth / 2**20:.0f} MiB"
    print(f"{name}: {len(body)} B -> {largest} B in {max(took) * 1000:.0f} ms (worst)")
