"""Servers under test and the wrk load generator."""

import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
API_DIR = REPO_ROOT / "API"
APPS_DIR = Path(__file__).resolve().parent / "apps"
WRK_SCRIPT = Path(__file__).resolve().parent / "wrk_report.lua"
STARTUP_TIMEOUT_S = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """A server subprocess in its own process group, on 127.0.0.1:port."""

    def __init__(
        self,
        label: str,
        command: list[str],
        env: dict[str, str],
        log_path: Path,
        cwd: Path = API_DIR,
    ):
        self.label = label
        self.cwd = cwd
        self.port = free_port()
        self.command = [part.format(port=self.port) for part in command]
        self.env = {**os.environ, **env, "API_HOST": "127.0.0.1", "API_PORT": str(self.port)}
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "Server":
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=self.cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_until_serving()
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self.process is not None
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def _wait_until_serving(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.label} exited at startup; see {self.log_path}")
            try:
                httpx.get(self.url + "/openapi.json", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.2)
        raise RuntimeError(f"{self.label} did not start in {STARTUP_TIMEOUT_S} s")


def api_server(
    label: str, workers: int, env: dict[str, str], log_path: Path, api_dir: Path = API_DIR
) -> Server:
    """The API through its production launcher (app.serve), run from ``api_dir``."""
    return Server(
        label,
        [sys.executable, "-m", "app.serve"],
        {**env, "API_WORKERS": str(workers)},
        log_path,
        cwd=api_dir,
    )


def plain_uvicorn_server(
    label: str, app: str, env: dict[str, str], log_path: Path, api_dir: Path = API_DIR
) -> Server:
    """A bench app (``module:attribute`` in bench/apps) on one uvicorn worker with uvloop and
    httptools, importing ``app`` (the request and response models) from ``api_dir``."""
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--app-dir",
        str(APPS_DIR),
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    return Server(label, command, {**env, "PYTHONPATH": str(api_dir)}, log_path, cwd=api_dir)


@dataclass(frozen=True)
class LoadResult:
    """Medians over the rounds; errors summed over them."""

    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    rounds: int
    load_generator_cores: float  # wrk's CPU seconds per second: cores the server did not get


@dataclass(frozen=True)
class Load:
    threads: int
    connections: int
    duration_s: int
    warmup_s: int = 1


@dataclass(frozen=True)
class Job:
    """One endpoint under one load."""

    url: str
    body_file: Path | None
    load: Load


def run_wrk(url: str, body_file: Path | None, threads: int, connections: int, seconds: int):
    """One wrk run; returns its parsed summary (see wrk_report.lua) and ``cpu_s``, the CPU
    time wrk itself used (user + system)."""
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "--timeout",
        "10s",
        "-s",
        str(WRK_SCRIPT),
        url,
    ]
    env = {**os.environ, "WRK_BODY_FILE": str(body_file or "")}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    output = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    for line in output.splitlines():
        if line.startswith("WRK_SUMMARY "):
            return {**json.loads(line.removeprefix("WRK_SUMMARY ")), "cpu_s": cpu_s}
    raise RuntimeError(f"wrk printed no summary:\n{output}")


def _run(job: Job, seconds: int) -> dict:
    load = job.load
    return run_wrk(job.url, job.body_file, load.threads, load.connections, seconds)


def measure_interleaved(jobs: list[Job], rounds: int) -> list[LoadResult]:
    """Warm every job up, then run the rounds round-robin over the jobs.

    Round-robin, so that a change in the machine's load (other processes) hits every
    endpoint alike instead of whichever was measured at that moment.
    """
    for job in jobs:
        _run(job, job.load.warmup_s)
    runs: list[list[dict]] = [[] for _ in jobs]
    for round_number in range(1, rounds + 1):
        print(f"round {round_number}/{rounds}", flush=True)
        for job, job_runs in zip(jobs, runs, strict=True):
            job_runs.append(_run(job, job.load.duration_s))
    return [summarize(job_runs) for job_runs in runs]


def summarize(runs: list[dict]) -> LoadResult:
    """Medians over the rounds; errors summed over them."""
    errors = ("connect", "read", "write", "status", "timeout")
    return LoadResult(
        requests_per_s=statistics.median(r["requests"] / (r["duration_us"] / 1e6) for r in runs),
        p50_ms=statistics.median(r["p50_us"] for r in runs) / 1000,
        p99_ms=statistics.median(r["p99_us"] for r in runs) / 1000,
        errors=sum(r[kind] for r in runs for kind in errors),
        rounds=len(runs),
        load_generator_cores=statistics.median(r["cpu_s"] / (r["duration_us"] / 1e6) for r in runs),
    )
