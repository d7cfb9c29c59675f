"""Benchmark: the API against the FastAPI floor and the previous API, with issue 18's targets.

Run from the repository root: ``uv run python bench/run.py`` (about 5 minutes; needs ``wrk``).
It serves the current API/ and, from a copy extracted with ``git archive``, the API of the
commit given by --previous (by default the last commit before the API was rebuilt), measures
both in the same interleaved rounds, prints markdown tables and PASS/FAIL per target, and
saves them to bench/results/. See bench/README.md for what is measured and the results.
"""

import argparse
import contextlib
import io
import json
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import httpx
import numpy as np
from harness import (
    API_DIR,
    REPO_ROOT,
    Job,
    Load,
    LoadResult,
    Server,
    api_server,
    measure_interleaved,
    plain_uvicorn_server,
)
from models import PRESCRIBED, load_pipeline, penguin_data, raw_rows_per_second, train

from penguin_contract import FEATURES, ONNX_INPUT_NAME

RESULTS_DIR = Path(__file__).resolve().parent / "results"
BATCH_ROWS = 1000
TARGETED_MODELS = tuple(PRESCRIBED)
LATENCY_MODEL = "svm"
GROUPS = ("classify", "batch", "infer", "workers")
# The API before bd88657 rebuilt it on plain FastAPI idioms (488cad3): issue 18 compares the
# batch with it. Any git revision works (--previous).
PREVIOUS_API_REV = "bd88657^"
# Issue 18 section 8.
FLOOR_SHARE_TARGET = 0.5
PREVIOUS_BATCH_SHARE_TARGET = 0.9
# Older issues' numbers, shown for reference on `info` rows only.
INFER_OVER_CLASSIFY_REFERENCE = 0.9  # issue 12
WORKERS_SPEEDUP_REFERENCE = 1.7  # issue 10
PACKAGES = (
    "fastapi",
    "starlette",
    "uvicorn",
    "uvloop",
    "httptools",
    "pydantic",
    "pydantic-core",
    "orjson",
    "numpy",
    "scikit-learn",
    "onnxruntime",
    "skl2onnx",
    "prometheus-client",
    "prometheus-fastapi-instrumentator",
)


@dataclass
class Workspace:
    """A temporary directory: the models, the request bodies, the previous API's copy, and
    one results directory (prediction log) per server."""

    root: Path
    bodies: dict[str, Path] = field(default_factory=dict)

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    def env(self, server: str) -> dict[str, str]:
        results = self.root / f"results-{server}"
        results.mkdir(exist_ok=True)
        return {
            "MODELS_DIR": str(self.models_dir),
            "REPORT_PATH": str(self.root / "report" / "model_metrics.pkl"),
            "RESULTS_DIR": str(results),
        }

    def compose_like(self, env: dict[str, str]) -> dict[str, str]:
        """``env`` plus what Compose gives the multi-worker API: metrics shared through files
        in an empty directory, so /metrics sums every worker."""
        metrics_dir = self.root / "prometheus-multiproc"
        metrics_dir.mkdir()
        return {**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}


def extract_api(revision: str, into: Path) -> Path:
    """API/ as committed in ``revision``, written under ``into`` (git archive, no worktree)."""
    archive = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "archive", "--format=tar", revision, "API"],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "API"


def penguin_record(values: np.ndarray) -> dict:
    return {
        name: int(value) if name in ("island", "sex", "year") else float(value)
        for name, value in zip(FEATURES, values, strict=True)
    }


def write_bodies(workspace: Workspace, X: np.ndarray) -> np.ndarray:
    """Request bodies: the README's Adelie (first data row), as /classify's object and as one
    [1, 7] FP64 tensor, and a 1000-row columnar batch. Returns the batch's rows."""
    batch = batch_rows(X)
    single = penguin_record(X[0])
    tensor = {"name": ONNX_INPUT_NAME, "shape": [1, len(FEATURES)], "datatype": "FP64"}
    bodies = {
        "single": single,
        "tensor": {"inputs": [{**tensor, "data": [float(single[name]) for name in FEATURES]}]},
        "columns": {"columns": columns(batch)},
    }
    for name, body in bodies.items():
        path = workspace.root / f"{name}.json"
        path.write_text(json.dumps(body))
        workspace.bodies[name] = path
    return batch


def batch_rows(X: np.ndarray) -> np.ndarray:
    """BATCH_ROWS data rows drawn with a fixed seed."""
    return X[np.random.default_rng(42).integers(0, len(X), BATCH_ROWS)]


def columns(rows: np.ndarray) -> dict[str, list]:
    records = [penguin_record(row) for row in rows]
    return {name: [record[name] for record in records] for name in FEATURES}


def check_endpoint(url: str, body_file: Path | None) -> None:
    """One request before the load: the endpoint must answer 200 (wrk counts only >= 400)."""
    if body_file is None:
        response = httpx.get(url, timeout=30)
    else:
        headers = {"content-type": "application/json"}
        response = httpx.post(url, content=body_file.read_bytes(), headers=headers, timeout=30)
    if response.status_code != 200:
        raise RuntimeError(f"{url} answered {response.status_code}: {response.text[:300]}")


@dataclass(frozen=True)
class Measurement:
    """What to measure: an endpoint of a server under a load, and the --only groups that
    need it (a measurement one group's target compares with is in that group too)."""

    key: str
    server: str
    path: str
    body: str
    groups: frozenset[str]
    rows_per_request: int = 1


def plan() -> list[Measurement]:
    svm = f"/classify/{LATENCY_MODEL}"
    classify = frozenset({"classify"})
    items = [
        Measurement("asgi-floor", "asgi", svm, "single", classify),
        Measurement("floor", "floor", svm, "single", classify),
        Measurement("sync-floor", "syncfloor", svm, "single", classify),
    ]
    items += [
        Measurement(
            f"api1-{name}",
            "api1",
            f"/classify/{name}",
            "single",
            frozenset({"classify", "workers", "infer"} if name == LATENCY_MODEL else classify),
        )
        for name in TARGETED_MODELS
    ]
    items += [
        Measurement(f"prev1-{LATENCY_MODEL}", "prev1", svm, "single", classify),
        Measurement(
            f"api1-infer-{LATENCY_MODEL}",
            "api1",
            f"/v2/models/{LATENCY_MODEL}/infer",
            "tensor",
            frozenset({"infer"}),
        ),
    ]
    for name in TARGETED_MODELS:
        items += [
            Measurement(
                f"{server}-batch-{name}",
                server,
                f"/classify/{name}/batch",
                "columns",
                frozenset({"batch"}),
                BATCH_ROWS,
            )
            for server in ("api1", "prev1")
        ]
    items.append(
        Measurement(f"apiN-{LATENCY_MODEL}", "apiN", svm, "single", frozenset({"workers"}))
    )
    return items


@dataclass
class Row:
    """One line of the results table."""

    key: str
    server: str
    endpoint: str
    connections: int
    result: LoadResult
    rows_per_request: int = 1

    @property
    def rows_per_s(self) -> float:
        return self.result.requests_per_s * self.rows_per_request


class Bench:
    def __init__(self, workspace: Workspace, args: argparse.Namespace, previous_dir: Path):
        self.workspace = workspace
        self.args = args
        self.previous_dir = previous_dir
        self.load = Load(2, args.connections, args.duration)
        self.log_dir = RESULTS_DIR / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)

    def server(self, key: str) -> Server:
        """The servers of a run; those a plan needs are all up at once so rounds interleave."""
        env, log = self.workspace.env(key), self.log(key)
        workers, api_dir = self.args.workers, self.args.api_dir
        if key == "asgi":
            return plain_uvicorn_server("ASGI floor", "asgi_floor_app:app", env, log, api_dir)
        if key == "floor":
            return plain_uvicorn_server("FastAPI floor", "floor_app:app", env, log, api_dir)
        if key == "syncfloor":
            label = "FastAPI floor as a def route (not the floor)"
            return plain_uvicorn_server(label, "floor_app:sync_app", env, log, api_dir)
        if key == "api1":
            return api_server("API (1 worker)", 1, env, log, api_dir)
        if key == "prev1":
            label = f"previous API {self.args.previous_short} (1 worker)"
            return api_server(label, 1, env, log, self.previous_dir)
        compose_like = self.workspace.compose_like(env)
        return api_server(f"API ({workers} workers)", workers, compose_like, log, api_dir)

    def measure(self, items: list[Measurement], servers: dict[str, Server]) -> dict[str, Row]:
        jobs = []
        for item in items:
            url = servers[item.server].url + item.path
            body_file = self.workspace.bodies[item.body]
            check_endpoint(url, body_file)
            jobs.append(Job(url, body_file, self.load))
        results = measure_interleaved(jobs, self.args.rounds)
        return {
            item.key: Row(
                item.key,
                servers[item.server].label,
                endpoint_label(item),
                self.load.connections,
                result,
                item.rows_per_request,
            )
            for item, result in zip(items, results, strict=True)
        }

    def log(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"


def endpoint_label(item: Measurement) -> str:
    shape = {"single": "", "tensor": " ([1, 7] FP64)", "columns": f" ({BATCH_ROWS} rows, columns)"}
    return f"POST {item.path}{shape[item.body]}"


def format_row(row: Row, floor_rate: float | None) -> str:
    result = row.result
    batch = row.rows_per_request > 1
    rows_per_s = f"{row.rows_per_s:,.0f}" if batch else ""
    of_floor = ""
    if floor_rate and not batch and row.key != "floor":
        of_floor = f"{result.requests_per_s / floor_rate:.0%}"
    return (
        f"| {row.server} | {row.endpoint} | {row.connections} | {result.requests_per_s:,.0f} "
        f"| {rows_per_s} | {of_floor} | {result.p50_ms:.2f} | {result.p99_ms:.2f} "
        f"| {result.errors} |"
    )


def results_table(rows: dict[str, Row]) -> list[str]:
    floor = rows.get("floor")
    floor_rate = floor.result.requests_per_s if floor else None
    return [
        "| server | endpoint | connections | req/s | rows/s | % of FastAPI floor | p50 ms "
        "| p99 ms | errors |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|",
        *(format_row(row, floor_rate) for row in rows.values()),
    ]


@dataclass
class Target:
    name: str
    measured: str
    passed: bool | None  # None: information, no target

    def line(self) -> str:
        verdict = {True: "PASS", False: "FAIL", None: "info"}[self.passed]
        return f"| {self.name} | {self.measured} | {verdict} |"


def targets(rows: dict[str, Row], previous: str) -> list[Target]:
    """Every target whose measurements are in ``rows`` (all of them in a full run)."""

    def rate(key: str) -> float:
        return rows[key].result.requests_per_s

    found = []
    if {"floor", "asgi-floor"} <= rows.keys():
        share = rate("floor") / rate("asgi-floor")
        found.append(Target("FastAPI floor / ASGI floor", f"{share:.0%}", None))
    if {"floor", "sync-floor"} <= rows.keys():
        share = rate("sync-floor") / rate("floor")
        found.append(Target("FastAPI floor as a def route / FastAPI floor", f"{share:.0%}", None))
    if "floor" in rows:
        for name in TARGETED_MODELS:
            if f"api1-{name}" in rows:
                share = rate(f"api1-{name}") / rate("floor")
                found.append(
                    Target(
                        f"{name} classify >= 50 % of the FastAPI floor req/s",
                        f"{share:.0%}",
                        share >= FLOOR_SHARE_TARGET,
                    )
                )
        prev_key = f"prev1-{LATENCY_MODEL}"
        if {prev_key, f"api1-{LATENCY_MODEL}"} <= rows.keys():
            found.append(
                Target(
                    f"{LATENCY_MODEL} classify of the previous API {previous}",
                    f"{rate(prev_key) / rate('floor'):.0%} of the floor; the current API does "
                    f"{rate(f'api1-{LATENCY_MODEL}') / rate(prev_key):.2f}x its req/s",
                    None,
                )
            )
    for name in TARGETED_MODELS:
        if {f"api1-batch-{name}", f"prev1-batch-{name}"} <= rows.keys():
            share = rows[f"api1-batch-{name}"].rows_per_s / rows[f"prev1-batch-{name}"].rows_per_s
            found.append(
                Target(
                    f"batch {name} ({BATCH_ROWS} rows) >= 90 % of {previous}'s rows/s",
                    f"{share:.0%}",
                    share >= PREVIOUS_BATCH_SHARE_TARGET,
                )
            )
    infer_key = f"api1-infer-{LATENCY_MODEL}"
    if {infer_key, f"api1-{LATENCY_MODEL}"} <= rows.keys():
        ratio = rate(infer_key) / rate(f"api1-{LATENCY_MODEL}")
        found.append(
            Target(
                f"v2 infer {LATENCY_MODEL} req/s / classify (issue 12 asked "
                f">= {INFER_OVER_CLASSIFY_REFERENCE}x)",
                f"{ratio:.2f}x",
                None,
            )
        )
    workers_key = f"apiN-{LATENCY_MODEL}"
    if {workers_key, f"api1-{LATENCY_MODEL}"} <= rows.keys():
        ratio = rate(workers_key) / rate(f"api1-{LATENCY_MODEL}")
        found.append(
            Target(
                f"2 workers / 1 worker, {LATENCY_MODEL} req/s (issue 10 asked "
                f">= {WORKERS_SPEEDUP_REFERENCE}x)",
                f"{ratio:.2f}x",
                None,
            )
        )
        found.append(workers_per_core(rows[workers_key], rows[f"api1-{LATENCY_MODEL}"]))
    current = [row for key, row in rows.items() if key.startswith(("api1", "apiN"))]
    errors = sum(row.result.errors for row in current)
    found.append(Target("0 errors (current API, every row)", str(errors), errors == 0))
    others = sum(row.result.errors for row in rows.values() if row not in current)
    if others:
        found.append(Target("errors of the floors and the previous API", str(others), None))
    return found


def workers_per_core(many: Row, one: Row) -> Target:
    """The scaling per core the workers actually had: wrk runs on the same machine, and the
    CPU it uses is taken from the servers (all of it from the second core with 1 worker)."""
    cores = os.cpu_count() or 1
    many_cores = cores - many.result.load_generator_cores
    one_cores = min(1.0, cores - one.result.load_generator_cores)
    per_core = (many.result.requests_per_s / many_cores) / (one.result.requests_per_s / one_cores)
    return Target(
        "2 workers, req/s per core left by wrk",
        f"{per_core:.2f}x of 1 worker's (wrk used {many.result.load_generator_cores:.2f} of "
        f"{cores} cores with 2 workers, {one.result.load_generator_cores:.2f} with 1)",
        None,
    )


def batch_section(rows: dict[str, Row], raw: dict[str, float], previous: str) -> list[str]:
    if not raw:
        return []
    lines = [
        f"## Batch: current API against {previous} (same run, same {BATCH_ROWS} rows)",
        "",
        f"| model | {previous} rows/s | current rows/s | current / previous "
        "| in-process pipeline.predict rows/s (n_jobs=1) |",
        "|---|--:|--:|--:|--:|",
    ]
    for name, raw_rate in raw.items():
        current = rows[f"api1-batch-{name}"].rows_per_s
        before = rows[f"prev1-batch-{name}"].rows_per_s
        lines.append(
            f"| {name} | {before:,.0f} | {current:,.0f} | {current / before:.0%} "
            f"| {raw_rate:,.0f} |"
        )
    return [*lines, ""]


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def git(*args: str) -> str:
    command = ["git", "-C", str(REPO_ROOT), *args]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()


def last_change(directory: Path) -> str:
    """The last commit that changed ``directory`` (a directory of this repository)."""
    command = ["git", "-C", str(directory), "log", "-1", "--format=%h %s", "--", "."]
    return subprocess.run(command, capture_output=True, text=True).stdout.strip()


def api_at(revision: str) -> str:
    """Which commit ``revision`` is, and the last commit up to it that changed API/."""
    changed = git("log", "-1", "--format=%h %s", revision, "--", "API")[:120]
    return f"{git('rev-parse', '--short', revision)}: API/ last changed in {changed}"


def current_api(args: argparse.Namespace) -> str:
    if args.current:
        return f"API/ of {args.current}, {api_at(args.current)}"
    status = ["git", "-C", str(args.api_dir), "status", "--porcelain", "--", "."]
    dirty = subprocess.run(status, capture_output=True, text=True).stdout.strip()
    return f"{args.api_dir}, last changed in {last_change(args.api_dir)[:120]}" + (
        " (with uncommitted changes)" if dirty else ""
    )


def environment(args: argparse.Namespace) -> list[str]:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line),
        platform.processor(),
    )
    wrk_banner = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout
    wrk = wrk_banner.split("\n")[0].split(" Copyright")[0]
    return [
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- Machine: {cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}",
        f"- Python {platform.python_version()}; "
        + ", ".join(f"{name} {version(name)}" for name in PACKAGES),
        f"- Current API: {current_api(args)}",
        f"- Previous API: API/ of {args.previous}, {api_at(args.previous)}",
        f"- Load generator: {wrk.strip()}, -t2 -c{args.connections}, {args.duration} s per "
        f"round, median of {args.rounds} interleaved rounds after a 1 s warm-up",
        f"- Load average at start: {load_average()}",
    ]


def raw_predict_rates(models_dir: Path, batch: np.ndarray) -> dict[str, float]:
    """In-process ``pipeline.predict`` rows/s on the batch's rows (joblib, n_jobs=1)."""
    return {
        name: raw_rows_per_second(load_pipeline(models_dir, name), batch)
        for name in TARGETED_MODELS
    }


def run(args: argparse.Namespace) -> str:
    header = environment(args)
    items = [item for item in plan() if item.groups & set(args.only)]
    with tempfile.TemporaryDirectory(prefix="penguin-bench-") as root:
        workspace = Workspace(Path(root))
        previous_dir = extract_api(args.previous, workspace.root / "previous")
        if args.current:
            args.api_dir = extract_api(args.current, workspace.root / "current")
        print("Training models with ModelTrainer...", flush=True)
        train(workspace.models_dir, workspace.root / "report" / "model_metrics.pkl", PRESCRIBED)
        X, _ = penguin_data()
        batch = write_bodies(workspace, X)
        raw = raw_predict_rates(workspace.models_dir, batch) if "batch" in args.only else {}
        bench = Bench(workspace, args, previous_dir)
        with contextlib.ExitStack() as stack:
            servers = {
                key: stack.enter_context(bench.server(key))
                for key in dict.fromkeys(item.server for item in items)
            }
            print("Servers up; measuring (rounds interleaved over every endpoint)...", flush=True)
            rows = bench.measure(items, servers)
    previous = args.previous_short
    return "\n".join(
        [
            *header,
            f"- Load average at end: {load_average()}",
            "",
            "## Throughput and latency",
            "",
            *results_table(rows),
            "",
            *batch_section(rows, raw, previous),
            "## Targets (issue 18, section 8)",
            "",
            "| target | measured | result |",
            "|---|--:|---|",
            *(target.line() for target in targets(rows, previous)),
        ]
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk round")
    parser.add_argument("--rounds", type=int, default=3, help="wrk rounds per endpoint")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="workers of the multi-worker run")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=GROUPS,
        default=list(GROUPS),
        help="measure only these groups of endpoints (to iterate fast); default: all",
    )
    parser.add_argument(
        "--api-dir",
        type=Path,
        default=API_DIR,
        help="the API/ directory to serve as the current API (default: this checkout's)",
    )
    parser.add_argument(
        "--current",
        metavar="REV",
        help="serve API/ as committed in this git revision (extracted like --previous) "
        "instead of --api-dir, e.g. HEAD to leave uncommitted changes out",
    )
    parser.add_argument(
        "--previous",
        default=PREVIOUS_API_REV,
        help="git revision whose API/ is served as the previous API (extracted with git "
        f"archive into the run's temporary directory); default {PREVIOUS_API_REV}, the last "
        "commit before the API was rebuilt on plain FastAPI idioms",
    )
    args = parser.parse_args()
    args.api_dir = args.api_dir.resolve()
    args.previous_short = git("rev-parse", "--short", args.previous)
    return args


def main() -> None:
    args = parse_args()
    report = run(args)
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / "latest.md").write_text(report + "\n")
    print("\n" + report)


if __name__ == "__main__":
    sys.exit(main())
