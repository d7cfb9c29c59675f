"""Load a running API: concurrent classify requests from client threads, and its memory."""

import os
import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx

from support.api import ADELIE
from support.live_server import LiveServer

MODELS = ("randomforest", "svm", "gradientboosting", "best")
REQUIRED_LOG_KEYS = {"timestamp", "input", "result", "request_id", "model", "model_sha256"}
REQUEST_TIMEOUT_S = 30


@dataclass(frozen=True)
class Outcome:
    status: int  # 0: the connection failed
    request_id: str | None
    model: str


def send_requests(
    base_url: str,
    count: int,
    seed: int,
    bodies: list[dict],
    models: tuple[str, ...] = MODELS,
    stop: threading.Event | None = None,
) -> list[Outcome]:
    """``count`` classify requests over one keep-alive connection (fewer if ``stop`` is set)."""
    rng = random.Random(seed)
    outcomes = []
    with httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT_S) as client:
        for _ in range(count):
            if stop is not None and stop.is_set():
                break
            model = rng.choice(models)
            try:
                response = client.post(f"/classify/{model}", json=rng.choice(bodies or [ADELIE]))
            except httpx.TransportError:
                outcomes.append(Outcome(0, None, model))
                continue
            outcomes.append(
                Outcome(response.status_code, response.headers.get("x-request-id"), model)
            )
    return outcomes


def run_clients(clients: int, work: Callable[[int], list[Outcome]]) -> list[Outcome]:
    """Run ``work(seed)`` in ``clients`` threads at once; all their outcomes."""
    with ThreadPoolExecutor(clients) as pool:
        return [outcome for batch in pool.map(work, range(clients)) for outcome in batch]


def server_rss_bytes(server: LiveServer) -> int:
    """Resident memory of the launcher and all its workers (the whole process group)."""
    pgid = server.process.pid
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) != pgid:
                continue
            status = (entry / "status").read_text()
        except (ProcessLookupError, FileNotFoundError, PermissionError):
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total
