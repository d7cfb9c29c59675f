"""predictions.log: whole lines, one write each, and no prediction without its line."""

import fcntl
import json
import os
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from support.api import ADELIE, read_log

from app.errors import PredictionLogError
from app.prediction_log import PredictionLog


def json_line(record: dict) -> bytes:
    """A line shaped like the API's own (they all start with the timestamp)."""
    line = {"timestamp": "2026-12-01T00:00:00.000+00:00", **record}
    return (json.dumps(line, separators=(",", ":")) + "\n").encode()


def logged(path) -> list[dict]:
    return [{k: v for k, v in line.items() if k != "timestamp"} for line in read_log(path)]


def test_lines_from_many_threads_are_whole_and_none_is_lost(tmp_path):
    log = PredictionLog(tmp_path / "predictions.log")
    records = [{"i": i, "pad": "x" * (i % 500)} for i in range(2000)]

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda record: log.append(json_line(record)), records))

    lines = logged(tmp_path / "predictions.log")
    assert sorted(line["i"] for line in lines) == list(range(2000))


def test_a_deleted_log_is_recreated(tmp_path):
    path = tmp_path / "predictions.log"
    log = PredictionLog(path)
    log.append(json_line({"n": 1}))
    path.unlink()

    log.append(json_line({"n": 2}))

    assert logged(path) == [{"n": 2}]


PARTIAL = json_line({"n": 2, "pad": "xx"})[:-9]


@pytest.mark.parametrize(
    "torn",
    [
        pytest.param(json_line({"n": 1}) + PARTIAL, id="after-whole-lines"),
        pytest.param(PARTIAL, id="only-a-partial-line"),
    ],
)
def test_a_partial_line_left_by_a_killed_writer_is_cut_before_the_next(tmp_path, torn):
    path = tmp_path / "predictions.log"
    path.write_bytes(torn)  # what a writer killed between two pages of its write leaves

    PredictionLog(path).append(json_line({"n": 3}))

    whole = torn[: torn.rfind(b"\n") + 1]
    assert path.read_bytes() == whole + json_line({"n": 3})


@pytest.mark.parametrize(
    "foreign",
    [
        pytest.param(b"a note someone typed, no newline", id="text-without-newline"),
        pytest.param(json_line({"n": 1}) + b"x" * 200_000, id="longer-than-any-line"),
        pytest.param(json_line({"n": 1}) + b'{"other":1', id="not-an-api-line"),
    ],
)
def test_a_tail_the_api_did_not_write_is_never_cut(tmp_path, foreign):
    path = tmp_path / "predictions.log"
    path.write_bytes(foreign)

    PredictionLog(path).append(json_line({"n": 3}))

    assert path.read_bytes() == foreign + b"\n" + json_line({"n": 3})


def test_an_append_waits_for_the_writer_holding_the_lock(tmp_path):
    path = tmp_path / "predictions.log"
    path.write_bytes(json_line({"n": 1}))
    other_writer = os.open(path, os.O_RDWR | os.O_APPEND)
    fcntl.flock(other_writer, fcntl.LOCK_EX)
    appender = threading.Thread(
        target=PredictionLog(path).append, args=(json_line({"n": 2}),), daemon=True
    )
    try:
        appender.start()
        appender.join(timeout=0.3)
        assert appender.is_alive(), "the append did not wait for the lock"
        assert logged(path) == [{"n": 1}]
    finally:
        fcntl.flock(other_writer, fcntl.LOCK_UN)
        os.close(other_writer)
    appender.join(timeout=10)
    assert logged(path) == [{"n": 1}, {"n": 2}]


def test_fsync_option_writes_the_same_lines(tmp_path):
    log = PredictionLog(tmp_path / "predictions.log", fsync=True)
    log.append(json_line({"n": 1}) + json_line({"n": 2}))

    assert logged(tmp_path / "predictions.log") == [{"n": 1}, {"n": 2}]


def test_write_failure_raises_prediction_log_error(tmp_path):
    (tmp_path / "predictions.log").mkdir()  # a directory cannot be opened for appending

    with pytest.raises(PredictionLogError, match="Is a directory"):
        PredictionLog(tmp_path / "predictions.log").append(json_line({"n": 1}))


def _break_results_dir(results_dir, how):
    if how == "log is a directory":
        (results_dir / "predictions.log").unlink()
        (results_dir / "predictions.log").mkdir()
    elif how == "directory missing":
        shutil.rmtree(results_dir)
    else:  # a file where the directory should be
        shutil.rmtree(results_dir)
        results_dir.write_text("not a directory")


@pytest.mark.parametrize("how", ["log is a directory", "directory missing", "file in the way"])
def test_unloggable_prediction_is_503_and_never_returned(client, results_dir, how):
    assert client.post("/classify/svm", json=ADELIE).status_code == 200  # fd already open
    _break_results_dir(results_dir, how)

    single = client.post("/classify/svm", json=ADELIE)
    batch = client.post("/classify/svm/batch", json={"instances": [ADELIE]})
    ready = client.get("/ready")

    for response in (single, batch):
        assert response.status_code == 503
        assert "species_name" not in response.text
        assert "prediction log" in response.json()["detail"]
    assert ready.status_code == 503
    assert ready.json()["checks"]["results_dir"] != "ok"


def test_server_keeps_logging_after_the_results_directory_is_fixed(client, results_dir, log_path):
    shutil.rmtree(results_dir)
    assert client.post("/classify/svm", json=ADELIE).status_code == 503

    os.mkdir(results_dir)

    assert client.post("/classify/svm", json=ADELIE).status_code == 200
    assert client.get("/ready").status_code == 200
    assert len(logged(log_path)) == 1


def test_log_lines_are_compact_json_with_the_documented_keys(client, log_path):
    client.post("/classify/gradientboosting", json=ADELIE)

    [raw] = log_path.read_text().splitlines()
    line = json.loads(raw)
    assert {
        "timestamp",
        "input",
        "result",
        "request_id",
        "model",
        "model_sha256",
        "latency_ms",
    } <= (line.keys())
    assert ", " not in raw


def test_api_with_log_fsync_logs_single_and_batch_predictions(settings):
    from fastapi.testclient import TestClient

    from app.main import create_app

    fsync_settings = settings.model_copy(update={"log_fsync": True})
    with TestClient(create_app(fsync_settings)) as client:
        single = client.post("/classify/svm", json=ADELIE)
        batch = client.post("/classify/svm/batch", json={"instances": [ADELIE, ADELIE]})

    assert single.status_code == batch.status_code == 200
    lines = logged(fsync_settings.predictions_log_path)
    assert [line["request_id"] for line in lines] == [
        single.headers["X-Request-ID"],
        *[batch.headers["X-Request-ID"]] * 2,
    ]
