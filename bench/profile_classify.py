"""What stands between the floor and the API: one request's cost in process, and its profile.

Run from the repository root: ``uv run python bench/profile_classify.py`` (about a minute).
It trains the model with ModelTrainer in a temporary directory, builds the bare ASGI floor,
the FastAPI floor and the API (``create_app``, its lifespan run) in this process, and calls
each app directly through ASGI on uvloop (no HTTP server, no client library, so neither shows
in the profile), one request at a time, with the same body ``bench/run.py`` sends.

It prints microseconds per request for each app; the API also with FastAPI's worker threads
inlined (its ``def`` routes then run on the loop's thread), which is what the difference
between the two costs in hops to a thread; for a single-row classify, the cost of each piece
of the path called alone (app.predict, app.catalog, FastAPI's response serialization...);
and pyinstrument's samples of the API with threads inlined (pyinstrument samples only the
thread that started it): self time by library and the functions with the most self time, in
microseconds per request. Under HTTP load, with 16 connections, what also costs is the
contention between the loop and the worker threads for the GIL, which one request at a time
does not show: bench/README.md says how to see it.
"""

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from unittest.mock import patch

import fastapi.dependencies.utils
import fastapi.routing
import orjson
import uvloop
from harness import API_DIR, APPS_DIR
from models import NOTEBOOK_KNN, PRESCRIBED, penguin_data, train
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
    "prometheus_fastapi_instrumentator",
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
    """The pieces of POST /classify/{model} called one by one (no profiler overhead), in the
    order the request meets them. Only for an API with app.predict (bd88657 and later)."""
    from fastapi.routing import serialize_response
    from starlette.concurrency import run_in_threadpool

    from app.api.routes.classify import router as classify_router
    from app.predict import Predictions, log_lines
    from app.prediction_log import PredictionLog, utc_timestamp
    from app.schemas import PenguinFeatures, Prediction

    catalog, predictor = api.state.catalog, api.state.predictor
    served = catalog.servable(model)
    features = PenguinFeatures.model_validate(record)
    rows = features.rows()
    labels, probabilities = served.runtime.predict(rows)
    predictions = Predictions(
        served.name, served.sha256, served.runtime.name, labels, probabilities
    )
    body = predictions.bodies()[0]
    head = {
        "timestamp": utc_timestamp(),
        "request_id": "profile",
        "model": served.name,
        "model_sha256": served.sha256,
        "runtime": served.runtime.name,
    }
    line = log_lines(head, rows, predictions, 0.123, False)
    log_path = api.state.settings.predictions_log_path
    scratch = PredictionLog(log_path.with_name("scratch.log"))
    fd = os.open(log_path.with_name("plain.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    route = next(route for route in classify_router.routes if route.path == "/classify/{model}")
    response_field = route.response_field

    async def run(call):
        return call()

    def no_op() -> None:
        return None

    costs = {
        "PenguinFeatures.model_validate (the body's dict)": lambda: run(
            lambda: PenguinFeatures.model_validate(record)
        ),
        "features.rows() ([1, 7] float64)": lambda: run(features.rows),
        "os.urandom(16).hex() (request id)": lambda: run(lambda: os.urandom(16).hex()),
        "catalog.servable (name -> loaded model; stats the models directory)": lambda: run(
            lambda: catalog.servable(model)
        ),
        "predictor.predict (all of the below)": lambda: run(
            lambda: predictor.predict(served, rows, "profile", batch=False)
        ),
        "  runtime.predict (1 row)": lambda: run(lambda: served.runtime.predict(rows)),
        "  log_lines (encode the line)": lambda: run(
            lambda: log_lines(head, rows, predictions, 0.123, False)
        ),
        "  PredictionLog.append (one line: lock, checks, write)": lambda: run(
            lambda: scratch.append(line)
        ),
        "    os.write of the same line (O_APPEND), for comparison": lambda: run(
            lambda: os.write(fd, line)
        ),
        "  predictions counter .labels().inc()": lambda: run(
            lambda: predictor.counter.labels(served.name, "Adelie").inc()
        ),
        "Predictions.bodies() (the response dict)": lambda: run(predictions.bodies),
        "FastAPI: validate + dump the response (Prediction)": lambda: serialize_response(
            field=response_field, response_content=body, dump_json=True
        ),
        "  of it: Prediction.model_validate alone": lambda: run(
            lambda: Prediction.model_validate(body)
        ),
        "run_in_threadpool(no-op): one hop to a worker thread and back": lambda: run_in_threadpool(
            no_op
        ),
    }
    measured = {name: await median_us(call) for name, call in costs.items()}
    os.close(fd)
    scratch.close()
    return measured


def inline_threadpool() -> contextlib.AbstractContextManager:
    """Run FastAPI's ``def`` endpoints and dependencies on the loop's thread instead of a
    worker thread: pyinstrument samples only the thread that started it, so the profile
    would show the wait for the thread and nothing of what runs there."""

    async def run_inline(func, *args, **kwargs):
        return func(*args, **kwargs)

    stack = contextlib.ExitStack()
    for module in (fastapi.routing, fastapi.dependencies.utils):
        stack.enter_context(patch.object(module, "run_in_threadpool", run_inline))
    return stack


def bodies() -> dict[str, bytes]:
    X, _ = penguin_data()
    single = {name: float(value) for name, value in zip(FEATURES, X[0], strict=True)}
    single.update({name: int(single[name]) for name in ("island", "sex", "year")})
    tensor = {"name": ONNX_INPUT_NAME, "shape": [1, len(FEATURES)], "datatype": "FP64"}
    tensor["data"] = [float(value) for value in X[0]]
    return {
        "classify": orjson.dumps(single),
        "infer": orjson.dumps({"inputs": [tensor]}),
        "batch": orjson.dumps({"columns": columns(batch_rows(X))}),
    }


async def measure(args: argparse.Namespace, root: Path) -> None:
    models_dir, report = root / "models", root / "report" / "model_metrics.pkl"
    (root / "results").mkdir()
    train(models_dir, report, {args.model: {**PRESCRIBED, **NOTEBOOK_KNN}[args.model]})
    os.environ.update(
        MODELS_DIR=str(models_dir), REPORT_PATH=str(report), RESULTS_DIR=str(root / "results")
    )
    sys.path[:0] = [str(args.api_dir), str(APPS_DIR)]
    from asgi_floor_app import app as asgi_floor
    from floor_app import app as fastapi_floor
    from floor_app import sync_app as sync_floor

    from app.main import create_app  # the API under test, from --api-dir

    api = create_app()
    requests = args.requests or (100 if args.endpoint == "batch" else 3000)
    body, single = bodies()[args.endpoint], bodies()["classify"]
    path = f"/classify/{args.model}"
    api_path = {
        "classify": path,
        "infer": f"/v2/models/{args.model}/infer",
        "batch": f"{path}/batch",
    }[args.endpoint]
    api_name, inline_name = f"API {api_path}", f"API {api_path}, worker threads inlined"
    async with api.router.lifespan_context(api):
        costs = {
            "ASGI floor": await microseconds_per_request(asgi_floor, path, single, requests),
            "FastAPI floor": await microseconds_per_request(fastapi_floor, path, single, requests),
            "FastAPI floor as a def route": await microseconds_per_request(
                sync_floor, path, single, requests
            ),
            api_name: await microseconds_per_request(api, api_path, body, requests),
        }
        with inline_threadpool():
            costs[inline_name] = await microseconds_per_request(api, api_path, body, requests)
            profiler = await profile(api, api_path, body, requests)
        floor_profiler = await profile(fastapi_floor, path, single, requests)
        parts = {}
        if args.endpoint == "classify" and hasattr(api.state, "predictor"):
            parts = await part_costs(api, args.model, orjson.loads(single))
    print(f"In process, no HTTP server; median of 5 loops of {requests} requests, one at a time:")
    for name, micros in costs.items():
        print(f"  {micros:7.1f} us/request  {name}")
    if parts:
        print("\nParts of the API's single-row path, timed alone (median of 5 loops of 2000):")
    for name, micros in parts.items():
        print(f"  {micros:7.1f} us  {name}")
    print_libraries(floor_profiler, costs["FastAPI floor"], "FastAPI floor")
    print(f"\n{inline_name} (pyinstrument samples only the loop's thread):", end="")
    print_profile(profiler, costs[inline_name], args.top)
    if args.tree:
        print(profiler.output_text(unicode=True, short_mode=True))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="svm", choices=[*PRESCRIBED, *NOTEBOOK_KNN])
    parser.add_argument(
        "--endpoint",
        default="classify",
        choices=("classify", "infer", "batch"),
        help="POST /classify/{model}, POST /v2/models/{model}/infer, or POST "
        "/classify/{model}/batch with bench/run.py's 1000-row columnar body",
    )
    parser.add_argument(
        "--requests", type=int, help="requests per timed loop (default 3000; 100 for batch)"
    )
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
