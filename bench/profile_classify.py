"""What stands between the floor and the API: one request's cost in process, and its profile.

Run from the repository root: ``uv run python bench/profile_classify.py`` (about a minute).
It trains the model with ModelTrainer in a temporary directory, builds the bare ASGI floor,
the FastAPI floor and the API (create_app, its lifespan run) in this process, and calls each
app directly through ASGI on uvloop (no HTTP server, no client library, so neither shows in
the profile) with the same body ``bench/run.py`` sends. It prints microseconds per request for
each, then pyinstrument's samples of the API's loop: self time by library and the functions
with the most self time, in microseconds per request.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import orjson
import uvloop
from harness import API_DIR, APPS_DIR
from models import NOTEBOOK_KNN, PRESCRIBED, extra_estimators, penguin_data, train
from pyinstrument import Profiler
from run import batch_rows, columns

from penguin_contract import FEATURES, ONNX_INPUT_NAME

# Where a sampled function's file lives -> the library it is charged to.
LIBRARIES = (
    "fastapi",
    "starlette",
    "pydantic",
    "onnxruntime",
    "sklearn",
    "numpy",
    "prometheus_client",
    "asyncio",
    "anyio",
    "orjson",
    "uuid",
    "penguin_contract",
)


def request_scope(path: str, body: bytes | None) -> dict:
    """A POST of ``body`` to ``path``, or a GET when ``body`` is None."""
    content = [] if body is None else [(b"content-type", b"application/json")]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET" if body is None else "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            *content,
            (b"content-length", str(len(body or b"")).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def call(app, path: str, body: bytes | None) -> int:
    """One request through ``app``; returns the response status."""
    received = False
    status = 0

    async def receive() -> dict:
        nonlocal received
        if received:
            return {"type": "http.disconnect"}
        received = True
        return {"type": "http.request", "body": body or b"", "more_body": False}

    async def send(message: dict) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(request_scope(path, body), receive, send)
    return status


async def microseconds_per_request(app, path: str, body: bytes | None, requests: int) -> float:
    """Median over 5 bounded loops of ``requests`` calls, after a warm-up."""
    for _ in range(200):
        if (status := await call(app, path, body)) != 200:
            raise RuntimeError(f"{path} answered {status}")
    loops = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(requests):
            await call(app, path, body)
        loops.append((time.perf_counter() - started) / requests * 1e6)
    return statistics.median(loops)


async def profile(app, path: str, body: bytes | None, requests: int) -> Profiler:
    profiler = Profiler(interval=0.0001, async_mode="disabled")
    profiler.start()
    for _ in range(requests):
        await call(app, path, body)
    profiler.stop()
    return profiler


@dataclass(frozen=True)
class Sampled:
    """One frame of the profile: its self and inclusive seconds, charged to a library."""

    function: str
    position: str
    library: str
    self_s: float
    total_s: float


def sampled_frames(profiler: Profiler) -> list[Sampled]:
    """Every frame of the session. Built-ins and the standard library are charged to the
    library that called them (an ``isinstance`` in FastAPI is FastAPI's cost)."""
    found, stack = [], [(profiler.last_session.root_frame(), "bench driver")]
    while stack:
        frame, caller = stack.pop()
        if frame is None or frame.is_synthetic:
            continue
        library = library_of(frame.file_path or "") or caller
        position = f"{short(frame.file_path or '')}:{frame.line_no}"
        found.append(Sampled(frame.function, position, library, frame.total_self_time, frame.time))
        stack.extend((child, library) for child in frame.children)
    return found


def library_of(path: str) -> str | None:
    parts = Path(path).parts
    for library in LIBRARIES:
        if library in parts:
            return library
    if "API" in parts and "app" in parts:
        return "API/app"
    return None


def short(path: str) -> str:
    """A file path from its package on (fastapi/..., app/...)."""
    parts = Path(path).parts
    for anchor in ("site-packages", "API", "python3.11"):
        if anchor in parts:
            return str(Path(*parts[parts.index(anchor) + 1 :]))
    return path


def print_libraries(profiler: Profiler, measured_us: float, name: str) -> None:
    frames = sampled_frames(profiler)
    sampled = sum(frame.self_s for frame in frames)
    by_library = Counter()
    for frame in frames:
        by_library[frame.library] += frame.self_s
    print(
        f"\n{name}: self time by library (share of samples, of the measured {measured_us:.0f} us):"
    )
    for library, seconds in by_library.most_common():
        print(f"  {seconds / sampled:6.1%}  ~{seconds / sampled * measured_us:6.1f} us  {library}")


def print_profile(profiler: Profiler, measured_us: float, top: int) -> None:
    """Shares of the samples, and those shares of the measured (unprofiled) cost: the
    profiler's own overhead inflates its absolute times."""
    frames = sampled_frames(profiler)
    sampled = sum(frame.self_s for frame in frames)

    def line(seconds: float, what: str) -> str:
        share = seconds / sampled
        return f"  {share:6.1%}  ~{share * measured_us:6.1f} us  {what}"

    by_library, by_function, api_inclusive = Counter(), Counter(), Counter()
    for frame in frames:
        by_library[frame.library] += frame.self_s
        by_function[f"{frame.function} ({frame.position}) [{frame.library}]"] += frame.self_s
        if frame.position.startswith("app/"):
            api_inclusive[f"{frame.function} ({frame.position})"] += frame.total_s
    print(f"\nSelf time by library (share of samples, of the measured {measured_us:.0f} us):")
    print("\n".join(line(seconds, name) for name, seconds in by_library.most_common()))
    print(f"\nTop {top} functions by self time:")
    print("\n".join(line(seconds, name) for name, seconds in by_function.most_common(top)))
    print(f"\nTop {top} API functions by inclusive time (nested ones counted in each):")
    print("\n".join(line(seconds, name) for name, seconds in api_inclusive.most_common(top)))


async def median_us(call_once, calls: int = 2000) -> float:
    """Median over 5 loops of ``calls`` awaits of ``call_once()``, in microseconds."""
    loops = []
    for _ in range(6):
        started = time.perf_counter()
        for _ in range(calls):
            await call_once()
        loops.append((time.perf_counter() - started) / calls * 1e6)
    return statistics.median(loops[1:])  # the first loop warms up


async def part_costs(api, model: str, record: dict) -> dict[str, float]:
    """The pieces of POST /classify/{model} called one by one (no profiler overhead)."""
    from app.log_records import log_lines
    from app.prediction_log import PredictionLog, utc_timestamp
    from app.schemas import PenguinFeatures, feature_rows

    service = api.state.service
    served = await service.model_for(model)
    features = PenguinFeatures.model_validate(record)
    rows = feature_rows([features])
    log_path = api.state.settings.predictions_log_path
    line = log_path.read_bytes().splitlines(keepends=True)[-1]
    scratch = PredictionLog(log_path.with_name("scratch.log"))
    fd = os.open(log_path.with_name("plain.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT)

    async def run(call):
        return call()

    labels, probabilities = served.runtime.predict(rows)
    line_fields = {
        "request_id": "profile",
        "model": served.name,
        "model_sha256": served.sha256,
        "runtime": served.runtime.name,
        "rows": rows,
        "labels": labels,
        "probabilities": probabilities,
        "latency_ms": 0.123,
        "batch": False,
    }
    counter = service.predictions_counter

    costs = {
        "PenguinFeatures.model_validate (the body's dict)": await median_us(
            lambda: run(lambda: PenguinFeatures.model_validate(record))
        ),
        "service.model_for (name -> loaded model)": await median_us(
            lambda: service.model_for(model)
        ),
        "runtime.predict (1 row)": await median_us(
            lambda: run(lambda: served.runtime.predict(rows))
        ),
        "service.predict (predict + log line + counter)": await median_us(
            lambda: service.predict(served, rows, "profile", time.perf_counter(), batch=False)
        ),
        "log_lines (encode the line)": await median_us(
            lambda: run(lambda: log_lines(timestamp=utc_timestamp(), **line_fields))
        ),
        "predictions counter .labels().inc()": await median_us(
            lambda: run(lambda: counter.labels(served.name, "Adelie").inc())
        ),
        "PredictionLog.try_append (one line)": await median_us(
            lambda: run(lambda: scratch.try_append(line))
        ),
        "os.write of the same line (O_APPEND)": await median_us(
            lambda: run(lambda: os.write(fd, line))
        ),
        "os.urandom(16).hex() (request id)": await median_us(
            lambda: run(lambda: os.urandom(16).hex())
        ),
    }
    os.close(fd)
    scratch.close()
    return costs


def bodies() -> dict[str, bytes]:
    X, _ = penguin_data()
    single = {name: float(value) for name, value in zip(FEATURES, X[0], strict=True)}
    single.update({name: int(single[name]) for name in ("island", "sex", "year")})
    tensor = {"name": ONNX_INPUT_NAME, "shape": [1, len(FEATURES)], "datatype": "FP64"}
    tensor["data"] = [float(value) for value in X[0]]
    return {
        "classify": orjson.dumps(single),
        "infer": orjson.dumps({"inputs": [tensor]}),
        "models": None,
        "batch": orjson.dumps({"columns": columns(batch_rows(X))}),
    }


async def measure(args: argparse.Namespace, root: Path) -> None:
    models_dir, report = root / "models", root / "report" / "model_metrics.pkl"
    (root / "results").mkdir()
    estimators = {**PRESCRIBED, **NOTEBOOK_KNN}
    if args.endpoint == "models":
        extra = extra_estimators(args.models - len(estimators))
        train(models_dir, report, {**estimators, **extra})
    else:
        train(models_dir, report, {args.model: estimators[args.model]})
    os.environ.update(
        MODELS_DIR=str(models_dir), REPORT_PATH=str(report), RESULTS_DIR=str(root / "results")
    )
    sys.path[:0] = [str(args.api_dir), str(APPS_DIR)]
    from asgi_floor_app import app as asgi_floor
    from floor_app import app as fastapi_floor

    from app.main import create_app  # the API under test, from --api-dir

    api = create_app()
    body = bodies()[args.endpoint]
    path = f"/classify/{args.model}"
    api_path = {
        "classify": path,
        "infer": f"/v2/models/{args.model}/infer",
        "models": "/models",
        "batch": f"{path}/batch",
    }[args.endpoint]
    async with api.router.lifespan_context(api):
        costs = {
            "ASGI floor": await microseconds_per_request(asgi_floor, path, body, args.requests),
            "FastAPI floor": await microseconds_per_request(
                fastapi_floor, path, bodies()["classify"], args.requests
            ),
            f"API {api_path}": await microseconds_per_request(api, api_path, body, args.requests),
        }
        floor_profiler = await profile(fastapi_floor, path, bodies()["classify"], args.requests)
        profiler = await profile(api, api_path, body, args.requests)
        parts = {}
        if args.endpoint == "classify":
            parts = await part_costs(api, args.model, orjson.loads(bodies()["classify"]))
    print(f"In process, no HTTP server; median of 5 loops of {args.requests} requests:")
    for name, micros in costs.items():
        print(f"  {micros:7.1f} us/request  {name}")
    if parts:
        print("\nParts of the API's single-row path, timed alone (median of 5 loops of 2000):")
    for name, micros in parts.items():
        print(f"  {micros:7.1f} us  {name}")
    print_libraries(floor_profiler, costs["FastAPI floor"], "FastAPI floor")
    print_profile(profiler, costs[f"API {api_path}"], args.top)
    if args.tree:
        print(profiler.output_text(unicode=True, short_mode=True))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="svm", choices=[*PRESCRIBED, *NOTEBOOK_KNN])
    parser.add_argument(
        "--endpoint",
        default="classify",
        choices=("classify", "infer", "models", "batch"),
        help="POST /classify/{model}, POST /v2/models/{model}/infer, GET /models, or POST "
        "/classify/{model}/batch with bench/run.py's 1000-row columnar body",
    )
    parser.add_argument("--models", type=int, default=100, help="models for GET /models")
    parser.add_argument("--requests", type=int, default=3000, help="requests per timed loop")
    parser.add_argument("--top", type=int, default=25, help="functions listed")
    parser.add_argument("--tree", action="store_true", help="also print pyinstrument's tree")
    parser.add_argument("--api-dir", type=Path, default=API_DIR, help="the API/ directory")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="penguin-profile-") as root:
        uvloop.run(measure(args, Path(root)))  # the loop the API is served on


if __name__ == "__main__":
    main()
