"""Benchmark: the API against its floor, its limit and the original design.

Run from the repository root: ``uv run python bench/run.py`` (about 8 minutes; needs ``wrk``).
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
    Job,
    Load,
    LoadResult,
    Server,
    api_server,
    measure_interleaved,
    plain_uvicorn_server,
)
from models import (
    PRESCRIBED,
    extra_estimators,
    load_pipeline,
    penguin_data,
    raw_rows_per_second,
    single_row_predict_cost,
    train,
)

from penguin_contract import FEATURES

RESULTS_DIR = Path(__file__).resolve().parent / "results"
BATCH_ROWS = 1000
MODELS_IN_BIG_DIR = 100
TARGETED_MODELS = ("svm", "randomforest")
BATCH_MODELS = ("randomforest", "svm")
LATENCY_MODEL = "svm"
# A list of objects ({"instances": [...]}) and the columnar body ({"columns": {...}}).
BATCH_BODIES = ("batch", "columns")
# --only: the groups of endpoints a partial run measures (a full run measures them all).
ENDPOINT_GROUPS = ("classify", "batch", "models", "workers")


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


def penguin_record(values: np.ndarray) -> dict:
    return {
        name: int(value) if name in ("island", "sex", "year") else float(value)
        for name, value in zip(FEATURES, values, strict=True)
    }


def write_bodies(workspace: Workspace, X: np.ndarray) -> np.ndarray:
    """Request bodies: the README's Adelie (first data row) and a 1000-row batch."""
    batch = X[np.random.default_rng(42).integers(0, len(X), BATCH_ROWS)]
    records = [penguin_record(row) for row in batch]
    bodies = {
        "single": penguin_record(X[0]),
        "batch": {"instances": records},
        "columns": {"columns": {name: [record[name] for record in records] for name in FEATURES}},
    }
    for name, body in bodies.items():
        path = workspace.root / f"{name}.json"
        path.write_text(json.dumps(body))
        workspace.bodies[name] = path
    return batch


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
    """What to measure: an endpoint of a server under a load, keyed for the targets."""

    key: str
    server: Server
    path: str
    body: str | None
    load: Load
    rows_per_request: int = 1


class Bench:
    def __init__(self, workspace: Workspace, args: argparse.Namespace) -> None:
        self.workspace = workspace
        self.rounds = args.rounds
        self.only = set(args.only or ENDPOINT_GROUPS)
        self.many = Load(2, args.connections, args.duration)
        self.one = Load(1, 1, args.duration)
        self.log_dir = RESULTS_DIR / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)

    def servers(self, workers: int) -> dict[str, Server]:
        """Every server of the run; they are all up at once so the rounds can interleave."""
        three, hundred = self.workspace.env("models3"), self.workspace.env("models100")
        big = api_server(1, hundred, self.log("api-100-models"))
        big.label = f"API (1 worker), {MODELS_IN_BIG_DIR} models"
        return {
            "floor": plain_uvicorn_server("floor", "floor_app", three, self.log("floor")),
            "original": plain_uvicorn_server(
                "original design", "original_app", three, self.log("original")
            ),
            "api1": api_server(1, three, self.log("api-1-worker")),
            "api100": big,
            "apiN": api_server(
                workers, self.compose_like(three), self.log(f"api-{workers}-workers")
            ),
        }

    def plan(self, servers: dict[str, Server]) -> list[Measurement]:
        single, many, one = "single", self.many, self.one
        plan = [Measurement("floor", servers["floor"], f"/classify/{LATENCY_MODEL}", single, many)]
        plan += [
            Measurement(f"original-{name}", servers["original"], f"/classify/{name}", single, many)
            for name in TARGETED_MODELS
        ]
        for prefix in ("api1", "apiN"):
            server = servers[prefix]
            plan += [
                Measurement(f"{prefix}-{name}", server, f"/classify/{name}", single, many)
                for name in PRESCRIBED
            ]
            plan += [
                Measurement(
                    f"{prefix}-{body}-{name}",
                    server,
                    f"/classify/{name}/batch",
                    body,
                    many,
                    BATCH_ROWS,
                )
                for name in BATCH_MODELS
                for body in BATCH_BODIES
            ]
            plan.append(Measurement(f"{prefix}-models", server, "/models", None, many))
            plan.append(
                Measurement(f"{prefix}-one", server, f"/classify/{LATENCY_MODEL}", single, one)
            )
        plan.append(Measurement("api100-models", servers["api100"], "/models", None, many))
        return [item for item in plan if endpoint_group(item) in self.only]

    def measure(self, plan: list[Measurement]) -> dict[str, "Row"]:
        jobs = []
        for item in plan:
            body_file = self.workspace.bodies[item.body] if item.body else None
            check_endpoint(item.server.url + item.path, body_file)
            jobs.append(Job(item.server.url + item.path, body_file, item.load))
        results = measure_interleaved(jobs, self.rounds)
        return {
            item.key: Row(
                item.server.label,
                endpoint_label(item),
                item.load.connections,
                result,
                item.rows_per_request,
            )
            for item, result in zip(plan, results, strict=True)
        }

    def compose_like(self, env: dict[str, str]) -> dict[str, str]:
        """``env`` plus what Compose gives the multi-worker API: metrics shared through files
        in an empty directory, so /metrics sums every worker."""
        metrics_dir = self.workspace.root / "prometheus-multiproc"
        metrics_dir.mkdir()
        return {**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}

    def log(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"


def endpoint_group(item: Measurement) -> str:
    """Which --only group a measurement belongs to."""
    if item.key.endswith("-models"):
        return "models"
    if item.path.endswith("/batch"):
        return "batch"
    if item.key.startswith("apiN"):
        return "workers"
    return "classify"


def endpoint_label(item: Measurement) -> str:
    if item.body is None:
        return f"GET {item.path}"
    shape = "" if item.body == "single" else f" ({item.body} body)"
    return f"POST {item.path}{shape}"


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
    passed: bool

    def line(self) -> str:
        return f"| {self.name} | {self.measured} | {'PASS' if self.passed else 'FAIL'} |"


def limit_table(rows: dict[str, Row], costs: dict[str, float]) -> list[str]:
    lines = [
        "| model | predict cost ms (1 row, n_jobs=1) | limit req/s | API req/s | % of limit |",
        "|---|--:|--:|--:|--:|",
    ]
    for name, cost in costs.items():
        limit = single_row_limit(rows["floor"], cost)
        achieved = rows[f"api1-{name}"].result.requests_per_s
        lines.append(
            f"| {name} | {cost * 1000:.3f} | {limit:,.0f} | {achieved:,.0f} "
            f"| {100 * achieved / limit:.0f} % |"
        )
    return lines


def limit_section(rows: dict[str, Row], costs: dict[str, float]) -> list[str]:
    if not all(key in rows for key in ("floor", *(f"api1-{name}" for name in costs))):
        return ["Not measured (--only)."]
    return [
        f"Floor: {rows['floor'].result.requests_per_s:,.0f} req/s. "
        "Limit = 1 / (1 / floor + predict cost).",
        "",
        *limit_table(rows, costs),
    ]


def single_row_limit(floor: Row, predict_cost: float) -> float:
    return 1 / (1 / floor.result.requests_per_s + predict_cost)


def targets(rows: dict[str, Row], costs: dict[str, float], raw: dict[str, float]) -> list[Target]:
    """Every target whose measurements are in ``rows`` (all of them in a full run)."""

    def rate(key: str) -> float:
        return rows[key].result.requests_per_s

    def p50(key: str) -> float:
        return rows[key].result.p50_ms

    def measured(*keys: str) -> bool:
        return all(key in rows for key in keys)

    found = []
    for name in TARGETED_MODELS:
        if measured("floor", f"api1-{name}"):
            share = rate(f"api1-{name}") / single_row_limit(rows["floor"], costs[name])
            found.append(
                Target(f"{name} classify >= 75 % of its limit", f"{share:.0%}", share >= 0.75)
            )
    if measured("api1-randomforest", "original-randomforest"):
        ratio = rate("api1-randomforest") / rate("original-randomforest")
        found.append(Target("randomforest >= 5x the original design", f"{ratio:.1f}x", ratio >= 5))
    for name in BATCH_MODELS:
        if measured(f"api1-columns-{name}"):
            share = rows[f"api1-columns-{name}"].rows_per_s / raw[name]
            found.append(
                Target(
                    f"batch {name} (columnar body) >= 30 % of raw predict rows/s",
                    f"{share:.0%}",
                    share >= 0.3,
                )
            )
    if measured("api100-models", "api1-models"):
        ratio = p50("api100-models") / p50("api1-models")
        found.append(
            Target("GET /models p50: 100 models <= 2x 3 models", f"{ratio:.2f}x", ratio <= 2)
        )
    if measured("apiN-one", "api1-one"):
        ratio = p50("apiN-one") / p50("api1-one")
        found.append(
            Target("N workers: p50 at 1 connection <= 1.5x 1 worker", f"{ratio:.2f}x", ratio <= 1.5)
        )
    if measured(f"apiN-{LATENCY_MODEL}", f"api1-{LATENCY_MODEL}"):
        ratio = rate(f"apiN-{LATENCY_MODEL}") / rate(f"api1-{LATENCY_MODEL}")
        found.append(
            Target(
                f"N workers: {LATENCY_MODEL} req/s at 16 connections >= 1 worker",
                f"{ratio:.2f}x",
                ratio >= 1,
            )
        )
    errors = sum(row.result.errors for key, row in rows.items() if key.startswith("api"))
    found.append(Target("0 errors (API)", str(errors), errors == 0))
    return found


def environment(args: argparse.Namespace) -> list[str]:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line),
        platform.processor(),
    )
    wrk_banner = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout
    wrk = wrk_banner.split("\n")[0].split(" Copyright")[0]
    packages = ["fastapi", "uvicorn", "uvloop", "httptools", "pydantic", "scikit-learn", "numpy"]
    return [
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- Machine: {cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}",
        f"- Python {platform.python_version()}; "
        + ", ".join(f"{name} {version(name)}" for name in packages),
        f"- Load generator: {wrk.strip()}, -t2 -c{args.connections} (and -t1 -c1), "
        f"{args.duration} s per round, median of {args.rounds} rounds after a 1 s warm-up",
        f"- Load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())}",
    ]


def run(args: argparse.Namespace) -> str:
    header = environment(args)
    with tempfile.TemporaryDirectory(prefix="penguin-bench-") as root:
        workspace = Workspace(Path(root))
        print("Training models with ModelTrainer...", flush=True)
        for models, estimators in (
            ("models3", PRESCRIBED),
            ("models100", {**PRESCRIBED, **extra_estimators(MODELS_IN_BIG_DIR - len(PRESCRIBED))}),
        ):
            env = workspace.env(models)
            train(Path(env["MODELS_DIR"]), Path(env["REPORT_PATH"]), estimators)
        X, _ = penguin_data()
        batch = write_bodies(workspace, X)
        models_dir = workspace.root / "models3"
        pipelines = {name: load_pipeline(models_dir, name) for name in PRESCRIBED}
        costs = {name: single_row_predict_cost(p, X[:1]) for name, p in pipelines.items()}
        raw_rows = {name: raw_rows_per_second(pipelines[name], batch) for name in BATCH_MODELS}

        bench = Bench(workspace, args)
        with contextlib.ExitStack() as stack:
            servers = {
                key: stack.enter_context(server)
                for key, server in bench.servers(args.workers).items()
            }
            print("Servers up; measuring (rounds interleaved over every endpoint)...", flush=True)
            rows = bench.measure(bench.plan(servers))

    def batch_line(name: str, body: str) -> str:
        if f"api1-{body}-{name}" not in rows:
            return f"| {name} | {body} | {raw_rows[name]:,.0f} | not measured (--only) | |"
        share = rows[f"api1-{body}-{name}"].rows_per_s / raw_rows[name]
        api_rows = rows[f"api1-{body}-{name}"].rows_per_s
        return f"| {name} | {body} | {raw_rows[name]:,.0f} | {api_rows:,.0f} | {share:.0%} |"

    batch_lines = [batch_line(name, body) for name in BATCH_MODELS for body in BATCH_BODIES]
    lines = [
        *header,
        f"- Load average at end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}",
        "",
        "## Throughput and latency",
        "",
        *results_table(list(rows.values())),
        "",
        "## Single-row classify against its limit (1 worker)",
        "",
        *limit_section(rows, costs),
        "",
        "## Batch against raw pipeline.predict (same 1000 rows, in process)",
        "",
        "| model | body | raw predict rows/s | API batch rows/s (1 worker) | share |",
        "|---|---|--:|--:|--:|",
        *batch_lines,
        "",
        "## Targets",
        "",
        "| target | measured | result |",
        "|---|--:|---|",
        *(target.line() for target in targets(rows, costs, raw_rows)),
    ]
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk round")
    parser.add_argument("--rounds", type=int, default=3, help="wrk rounds per endpoint")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="workers of the multi-worker run")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=ENDPOINT_GROUPS,
        help="measure only these groups of endpoints (to iterate fast); default: all",
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
