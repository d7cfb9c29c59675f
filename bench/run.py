"""Benchmark: the API against its two floors, with issue 10's and issue 12's targets.

Run from the repository root: ``uv run python bench/run.py`` (about 6 minutes; needs ``wrk``).
It prints markdown tables and PASS/FAIL per target, and saves them to bench/results/.
See bench/README.md for what is measured and the committed results.
"""

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import httpx
import numpy as np
from harness import (
    API_DIR,
    Job,
    Load,
    LoadResult,
    Server,
    api_server,
    measure_interleaved,
    plain_uvicorn_server,
)
from models import (
    NOTEBOOK_KNN,
    PRESCRIBED,
    extra_estimators,
    load_pipeline,
    penguin_data,
    raw_rows_per_second,
    train,
)

from penguin_contract import FEATURES, ONNX_INPUT_NAME

RESULTS_DIR = Path(__file__).resolve().parent / "results"
BATCH_ROWS = 1000
MODELS_IN_BIG_DIR = 100
TARGETED_MODELS = tuple(PRESCRIBED)
LATENCY_MODEL = "svm"
GROUPS = ("classify", "batch", "models", "workers", "infer")
# Issue 10 section 4 and issue 12 section 1.
FLOOR_SHARE_TARGET = 0.6
P99_OVER_P50_TARGET = 3.0
BATCH_SHARE_TARGET = 1.0
MODELS_LATENCY_RATIO_TARGET = 1.2
WORKERS_SPEEDUP_TARGET = 1.7
INFER_OVER_CLASSIFY_TARGET = 0.9
PACKAGES = (
    "fastapi",
    "starlette",
    "uvicorn",
    "uvloop",
    "httptools",
    "pydantic",
    "orjson",
    "numpy",
    "scikit-learn",
    "onnxruntime",
    "skl2onnx",
    "prometheus-client",
)


@dataclass
class Workspace:
    root: Path
    bodies: dict[str, Path] = field(default_factory=dict)

    def env(self, models: str) -> dict[str, str]:
        results = self.root / f"results-{models}"
        results.mkdir(exist_ok=True)
        return {
            "MODELS_DIR": str(self.root / models),
            "REPORT_PATH": str(self.root / f"report-{models}" / "model_metrics.pkl"),
            "RESULTS_DIR": str(results),
        }

    def compose_like(self, env: dict[str, str]) -> dict[str, str]:
        """``env`` plus what Compose gives the multi-worker API: metrics shared through files
        in an empty directory, so /metrics sums every worker."""
        metrics_dir = self.root / "prometheus-multiproc"
        metrics_dir.mkdir()
        return {**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}


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


def has_v2(server: Server) -> bool:
    """Whether the server speaks the Open Inference Protocol (its GET /v2 answers 200)."""
    return httpx.get(server.url + "/v2", timeout=10).status_code == 200


@dataclass(frozen=True)
class Measurement:
    """What to measure: an endpoint of a server under a load, and the --only groups that
    need it (a measurement one group's target compares with is in that group too)."""

    key: str
    server: str
    path: str
    body: str | None
    groups: frozenset[str]
    rows_per_request: int = 1


def plan() -> list[Measurement]:
    svm = f"/classify/{LATENCY_MODEL}"
    items = [
        Measurement("asgi-floor", "asgi", svm, "single", frozenset({"classify"})),
        Measurement("floor", "floor", svm, "single", frozenset({"classify"})),
    ]
    items += [
        Measurement(
            f"api1-{name}",
            "api1",
            f"/classify/{name}",
            "single",
            frozenset({"classify", "workers", "infer"} if name == LATENCY_MODEL else {"classify"}),
        )
        for name in TARGETED_MODELS
    ]
    items += [
        Measurement("api100-knn", "api100", "/classify/knn", "single", frozenset({"classify"})),
        Measurement(
            f"api1-infer-{LATENCY_MODEL}",
            "api1",
            f"/v2/models/{LATENCY_MODEL}/infer",
            "tensor",
            frozenset({"infer"}),
        ),
    ]
    items += [
        Measurement(
            f"api1-batch-{name}",
            "api1",
            f"/classify/{name}/batch",
            "columns",
            frozenset({"batch"}),
            BATCH_ROWS,
        )
        for name in TARGETED_MODELS
    ]
    items += [
        Measurement("api1-models", "api1", "/models", None, frozenset({"models"})),
        Measurement("api100-models", "api100", "/models", None, frozenset({"models"})),
        Measurement("apiN-svm", "apiN", svm, "single", frozenset({"workers"})),
    ]
    return items


@dataclass
class Row:
    """One line of the results table."""

    server: str
    endpoint: str
    connections: int
    result: LoadResult
    rows_per_request: int = 1

    @property
    def rows_per_s(self) -> float:
        return self.result.requests_per_s * self.rows_per_request


class Bench:
    def __init__(self, workspace: Workspace, args: argparse.Namespace) -> None:
        self.workspace = workspace
        self.args = args
        self.load = Load(2, args.connections, args.duration)
        self.log_dir = RESULTS_DIR / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)

    def server(self, key: str) -> Server:
        """The servers of a run; those a plan needs are all up at once so rounds interleave."""
        three, hundred = self.workspace.env("models3"), self.workspace.env("models100")
        workers, api_dir = self.args.workers, self.args.api_dir
        if key == "asgi":
            return plain_uvicorn_server("ASGI floor", "asgi_floor_app", three, self.log(key))
        if key == "floor":
            return plain_uvicorn_server("FastAPI floor", "floor_app", three, self.log(key))
        if key == "api1":
            return api_server("API (1 worker)", 1, three, self.log(key), api_dir)
        if key == "api100":
            label = f"API (1 worker), {MODELS_IN_BIG_DIR} models"
            return api_server(label, 1, hundred, self.log(key), api_dir)
        compose_like = self.workspace.compose_like(three)
        return api_server(f"API ({workers} workers)", workers, compose_like, self.log(key), api_dir)

    def measure(self, items: list[Measurement], servers: dict[str, Server]) -> dict[str, Row]:
        jobs = []
        for item in items:
            url = servers[item.server].url + item.path
            body_file = self.workspace.bodies[item.body] if item.body else None
            check_endpoint(url, body_file)
            jobs.append(Job(url, body_file, self.load))
        results = measure_interleaved(jobs, self.args.rounds)
        return {
            item.key: Row(
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
    if item.body is None:
        return f"GET {item.path}"
    shape = {"single": "", "tensor": " ([1, 7] FP64)", "columns": f" ({BATCH_ROWS} rows, columns)"}
    return f"POST {item.path}{shape[item.body]}"


def format_row(row: Row) -> str:
    result = row.result
    rows_per_s = f"{row.rows_per_s:,.0f}" if row.rows_per_request > 1 else ""
    return (
        f"| {row.server} | {row.endpoint} | {row.connections} | {result.requests_per_s:,.0f} "
        f"| {rows_per_s} | {result.p50_ms:.2f} | {result.p99_ms:.2f} | {result.errors} |"
    )


def results_table(rows: list[Row]) -> list[str]:
    return [
        "| server | endpoint | connections | req/s | rows/s | p50 ms | p99 ms | errors |",
        "|---|---|--:|--:|--:|--:|--:|--:|",
        *(format_row(row) for row in rows),
    ]


@dataclass
class Target:
    name: str
    measured: str
    passed: bool | None  # None: information, no target

    def line(self) -> str:
        verdict = {True: "PASS", False: "FAIL", None: "info"}[self.passed]
        return f"| {self.name} | {self.measured} | {verdict} |"


def targets(rows: dict[str, Row], raw: dict[str, float], v2: bool | None) -> list[Target]:
    """Every target whose measurements are in ``rows`` (all of them in a full run)."""

    def rate(key: str) -> float:
        return rows[key].result.requests_per_s

    found = []
    if "floor" in rows and "asgi-floor" in rows:
        share = rate("floor") / rate("asgi-floor")
        found.append(Target("FastAPI floor / ASGI floor", f"{share:.0%}", None))
    for name in TARGETED_MODELS:
        if {"floor", f"api1-{name}"} <= rows.keys():
            found.append(single_row_target(name, rows[f"api1-{name}"], rate("floor")))
    if {"floor", "api100-knn"} <= rows.keys():
        share = rate("api100-knn") / rate("floor")
        found.append(Target("knn classify (no target)", f"{share:.0%} of the floor", None))
    for name in TARGETED_MODELS:
        if f"api1-batch-{name}" in rows:
            share = rows[f"api1-batch-{name}"].rows_per_s / raw[name]
            found.append(
                Target(
                    f"batch {name} ({BATCH_ROWS} rows) >= 100 % of pipeline.predict rows/s",
                    f"{share:.0%}",
                    share >= BATCH_SHARE_TARGET,
                )
            )
    if {"api100-models", "api1-models"} <= rows.keys():
        ratio = rows["api100-models"].result.p50_ms / rows["api1-models"].result.p50_ms
        found.append(
            Target(
                f"GET /models p50: {MODELS_IN_BIG_DIR} models <= 1.2x 3 models",
                f"{ratio:.2f}x",
                ratio <= MODELS_LATENCY_RATIO_TARGET,
            )
        )
    if {"apiN-svm", f"api1-{LATENCY_MODEL}"} <= rows.keys():
        ratio = rate("apiN-svm") / rate(f"api1-{LATENCY_MODEL}")
        found.append(
            Target(
                f"2 workers: {LATENCY_MODEL} req/s >= 1.7x 1 worker",
                f"{ratio:.2f}x",
                ratio >= WORKERS_SPEEDUP_TARGET,
            )
        )
        found.append(workers_per_core(rows["apiN-svm"], rows[f"api1-{LATENCY_MODEL}"]))
    infer_key = f"api1-infer-{LATENCY_MODEL}"
    infer_name = f"v2 infer {LATENCY_MODEL} req/s >= 0.9x /classify"
    if v2 is False:
        found.append(Target(infer_name, "not available (GET /v2 is not 200)", None))
    elif {infer_key, f"api1-{LATENCY_MODEL}"} <= rows.keys():
        ratio = rate(infer_key) / rate(f"api1-{LATENCY_MODEL}")
        found.append(Target(infer_name, f"{ratio:.2f}x", ratio >= INFER_OVER_CLASSIFY_TARGET))
    errors = sum(row.result.errors for key, row in rows.items() if key.startswith("api"))
    found.append(Target("0 errors (API, every row)", str(errors), errors == 0))
    return found


def workers_per_core(many: Row, one: Row) -> Target:
    """The scaling per core the workers actually had: wrk runs on the same machine, and the
    CPU it uses is taken from the servers (all of it from the second core with 1 worker)."""
    cores = os.cpu_count() or 1
    many_cores = cores - many.result.load_generator_cores
    one_cores = min(1.0, cores - one.result.load_generator_cores)
    per_core = (many.result.requests_per_s / many_cores) / (one.result.requests_per_s / one_cores)
    return Target(
        "2 workers, req/s per core left by wrk (no target)",
        f"{per_core:.2f}x of 1 worker's (wrk used {many.result.load_generator_cores:.2f} of "
        f"{cores} cores with 2 workers, {one.result.load_generator_cores:.2f} with 1)",
        None,
    )


def single_row_target(name: str, row: Row, floor_rate: float) -> Target:
    result = row.result
    share = result.requests_per_s / floor_rate
    spread = result.p99_ms / result.p50_ms
    passed = share >= FLOOR_SHARE_TARGET and result.errors == 0 and spread <= P99_OVER_P50_TARGET
    return Target(
        f"{name} classify >= 60 % of the FastAPI floor, 0 errors, p99 <= 3x p50",
        f"{share:.0%}, {result.errors} errors, p99 {spread:.1f}x p50",
        passed,
    )


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def git_commit(directory: Path) -> str:
    """The last commit that changed ``directory``."""
    command = ["git", "-C", str(directory), "log", "-1", "--format=%h %s", "--", "."]
    return subprocess.run(command, capture_output=True, text=True).stdout.strip()


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
        f"- API code: {args.api_dir.name}/, last changed in {git_commit(args.api_dir)}",
        f"- Load generator: {wrk.strip()}, -t2 -c{args.connections}, {args.duration} s per "
        f"round, median of {args.rounds} interleaved rounds after a 1 s warm-up",
        f"- Load average at start: {load_average()}",
    ]


def train_models(workspace: Workspace, servers: set[str]) -> None:
    print("Training models with ModelTrainer...", flush=True)
    train_dirs = {"models3": PRESCRIBED}
    if "api100" in servers:
        extra = extra_estimators(MODELS_IN_BIG_DIR - len(PRESCRIBED) - len(NOTEBOOK_KNN))
        train_dirs["models100"] = {**PRESCRIBED, **NOTEBOOK_KNN, **extra}
    for models, estimators in train_dirs.items():
        env = workspace.env(models)
        train(Path(env["MODELS_DIR"]), Path(env["REPORT_PATH"]), estimators)


def raw_predict_rates(workspace: Workspace, batch: np.ndarray) -> dict[str, float]:
    """In-process ``pipeline.predict`` rows/s on the batch's rows (joblib, n_jobs=1)."""
    models_dir = workspace.root / "models3"
    return {
        name: raw_rows_per_second(load_pipeline(models_dir, name), batch)
        for name in TARGETED_MODELS
    }


def run(args: argparse.Namespace) -> str:
    header = environment(args)
    items = [item for item in plan() if item.groups & set(args.only)]
    with tempfile.TemporaryDirectory(prefix="penguin-bench-") as root:
        workspace = Workspace(Path(root))
        train_models(workspace, {item.server for item in items})
        X, _ = penguin_data()
        batch = write_bodies(workspace, X)
        raw = raw_predict_rates(workspace, batch) if "batch" in args.only else {}
        bench = Bench(workspace, args)
        with contextlib.ExitStack() as stack:
            servers = {
                key: stack.enter_context(bench.server(key))
                for key in dict.fromkeys(item.server for item in items)
            }
            v2 = has_v2(servers["api1"]) if "api1" in servers else None
            if not v2:
                items = [item for item in items if not item.path.startswith("/v2/")]
            print("Servers up; measuring (rounds interleaved over every endpoint)...", flush=True)
            rows = bench.measure(items, servers)
    return "\n".join(
        [
            *header,
            f"- Load average at end: {load_average()}",
            "",
            "## Throughput and latency",
            "",
            *results_table(list(rows.values())),
            "",
            *batch_section(rows, raw),
            "## Targets",
            "",
            "| target | measured | result |",
            "|---|--:|---|",
            *(target.line() for target in targets(rows, raw, v2)),
        ]
    )


def batch_section(rows: dict[str, Row], raw: dict[str, float]) -> list[str]:
    if not raw:
        return []
    lines = [
        f"## Batch against in-process pipeline.predict (same {BATCH_ROWS} rows, n_jobs=1)",
        "",
        "| model | pipeline.predict rows/s | API batch rows/s (1 worker) | share |",
        "|---|--:|--:|--:|",
    ]
    for name, raw_rate in raw.items():
        api = rows[f"api1-batch-{name}"].rows_per_s
        lines.append(f"| {name} | {raw_rate:,.0f} | {api:,.0f} | {api / raw_rate:.0%} |")
    return [*lines, ""]


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
        help="the API/ directory to serve (another worktree's, e.g. a branch with /v2)",
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    report = run(args)
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / "latest.md").write_text(report + "\n")
    print("\n" + report)


if __name__ == "__main__":
    sys.exit(main())
