"""GET / (the web page) and the read-only endpoints it uses: confusion matrices, recent
predictions from the log's tail, prediction counts."""

import csv
import http.client
import json
import os
import shutil
import threading
from html.parser import HTMLParser
from itertools import pairwise

import httpx
import pytest
import ui_contract
from support.api import ADELIE, read_log
from support.live_server import live_server
from support.models import DATA_PATH, ModelStore

from app.api.routes import reports
from app.api.routes.ui import UI_DIR
from penguin_contract import FEATURES, FIELDS, ISLANDS, SEXES, SPECIES, confusion_matrix_filename

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SEX_LABELS = {"female": "hembra", "male": "macho"}


class FormControls(HTMLParser):
    """The page's form controls (input/select with their attributes and options) and buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: dict[str, dict] = {}
        self.options: dict[str, list[tuple[str, str]]] = {}
        self.buttons: list[str] = []
        self.inline: list[str] = []
        self._select: str | None = None
        self._option: str | None = None
        self._button = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "style" or "style" in attributes or any(a.startswith("on") for a in attributes):
            self.inline.append(tag)
        if tag == "script" and "src" not in attributes:
            self.inline.append(tag)
        if tag in ("input", "select") and "name" in attributes:
            self.controls[attributes["name"]] = {"tag": tag, **attributes}
        if tag == "select":
            self._select = attributes.get("name")
            self.options[self._select] = []
        if tag == "option" and self._select:
            self._option = attributes.get("value", "")
        self._button = tag == "button" and attributes.get("type") == "submit"

    def handle_data(self, data):
        if self._option is not None and self._select:
            self.options[self._select].append((self._option, data.strip()))
            self._option = None
        if self._button:
            self.buttons.append(data.strip())
            self._button = False

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None


def _page_controls(client) -> FormControls:
    parser = FormControls()
    parser.feed(client.get("/").text)
    return parser


def test_page_is_served_with_a_strict_content_security_policy(client):
    response = client.get("/")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = {
        directive.split()[0]: directive.split()[1:]
        for directive in response.headers["content-security-policy"].split("; ")
    }
    assert policy == {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
    }
    assert "unsafe" not in response.headers["content-security-policy"]


def test_page_has_no_inline_script_or_style_and_its_assets_are_served(client):
    page = client.get("/").text
    parser = _page_controls(client)

    assert parser.inline == []
    for asset in ("/static/ui/app.js", "/static/ui/contract.js", "/static/ui/app.css"):
        assert f'"{asset}"' in page
        assert client.get(asset).status_code == 200
    assert "http://" not in page and "https://" not in page


def test_docs_and_redoc_still_work(client):
    assert "swagger-ui-bundle.js" in client.get("/docs").text
    assert "redoc.standalone.js" in client.get("/redoc").text


def test_form_has_the_seven_contract_controls_and_the_classify_button(client):
    parser = _page_controls(client)

    assert list(parser.controls) == list(FEATURES)
    assert parser.buttons == ["Clasificar"]
    for spec in FIELDS:
        control = parser.controls[spec.name]
        assert f"e-{spec.name}" in control["aria-describedby"].split()
        if spec.codes is None:
            assert control["type"] == "number"
            assert float(control["min"]) == spec.minimum
            assert float(control["max"]) == spec.maximum
    assert parser.options["island"] == [(str(code), name) for code, name in ISLANDS.items()]
    assert parser.options["sex"] == [(str(code), SEX_LABELS[name]) for code, name in SEXES.items()]


def test_form_defaults_are_the_original_adelie(client):
    parser = _page_controls(client)
    selected = {"island": "1", "sex": "1"}  # the <option selected> of each select

    values = {name: control.get("value") for name, control in parser.controls.items()}

    for name in FEATURES:
        expected = selected.get(name, values[name])
        assert float(expected) == ADELIE[name], name


def test_contract_js_is_generated_from_the_contract_and_current():
    assert (UI_DIR / "contract.js").read_text() == ui_contract.render()


def test_real_birds_of_the_page_are_rows_of_the_data_set():
    with DATA_PATH.open(newline="") as handle:
        rows = {int(row["id"]): row for row in csv.DictReader(handle)}
    text = (UI_DIR / "contract.js").read_text()
    data = json.loads(text[text.index("(") + 1 : text.rindex(")")])

    birds = data["realBirds"]
    assert {bird["species"] for bird in birds} == set(SPECIES)
    for bird in birds:
        row = rows[bird["id"]]
        assert bird["species"] == int(row["species"])
        for name in FEATURES:
            assert bird[name] == float(row[name]), (bird["id"], name)
    assert data["species"] == {str(code): name for code, name in SPECIES.items()}


# --- GET /models/{name}/confusion-matrix -------------------------------------------------


@pytest.fixture
def report_dir(model_store: ModelStore):
    """The private report directory, with the PNGs the trainer saved."""
    directory = model_store.report_path.parent
    assert (directory / confusion_matrix_filename("svm")).is_file()
    return directory


def test_confusion_matrix_is_the_trainers_png(client, report_dir):
    response = client.get("/models/svm/confusion-matrix")

    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.content.startswith(PNG_SIGNATURE)
    assert response.content == (report_dir / confusion_matrix_filename("svm")).read_bytes()
    assert client.get("/models/SVM/confusion-matrix").content == response.content


def test_absent_confusion_matrix_is_a_json_404(client, report_dir):
    (report_dir / confusion_matrix_filename("svm")).unlink()

    for name in ("svm", "nosuch", "best"):
        response = client.get(f"/models/{name}/confusion-matrix")
        assert response.status_code == 404, name
        assert response.json()["code"] == "confusion_matrix_not_found"
        assert set(response.json()) == {"detail", "code"}


@pytest.mark.parametrize(
    "path",
    [
        "/models/../model_metrics.pkl/confusion-matrix",
        "/models/..%2Fmodel_metrics.pkl/confusion-matrix",
        "/models/..%2F..%2Fetc%2Fpasswd/confusion-matrix",
        "/models/%2e%2e/confusion-matrix",
        "/models/svm%00/confusion-matrix",
        "/models/svm%2F..%2Fsvm/confusion-matrix",
        "/models/.svm/confusion-matrix",
    ],
)
def test_path_tricks_get_a_json_404(client, report_dir, path):
    response = client.get(path)

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert not response.content.startswith(PNG_SIGNATURE)


def test_a_symlinked_confusion_matrix_is_refused(client, report_dir, tmp_path):
    outside = tmp_path / "outside.png"
    shutil.copy2(report_dir / confusion_matrix_filename("svm"), outside)
    link = report_dir / confusion_matrix_filename("svm")
    link.unlink()
    link.symlink_to(outside)

    response = client.get("/models/svm/confusion-matrix")

    assert response.status_code == 404
    assert response.json()["code"] == "confusion_matrix_not_found"


def test_a_fifo_or_non_png_in_place_of_the_matrix_is_refused_without_blocking(client, report_dir):
    fifo = report_dir / confusion_matrix_filename("svm")
    fifo.unlink()
    os.mkfifo(fifo)  # an open without O_NONBLOCK would wait for a writer
    (report_dir / confusion_matrix_filename("randomforest")).write_bytes(b"not a png")

    assert client.get("/models/svm/confusion-matrix").status_code == 404
    assert client.get("/models/randomforest/confusion-matrix").status_code == 404


# --- GET /predictions/recent -------------------------------------------------------------


def _line(index: int, model: str = "svm") -> bytes:
    record = {
        "timestamp": f"2026-12-01T00:00:00.{index % 1000:03d}+00:00",
        "request_id": f"r{index}",
        "model": model,
        "model_sha256": "0" * 64,
        "input": ADELIE,
        "result": {"species_id": 1, "species_name": "Adelie", "probabilities": None},
        "latency_ms": 1.0,
    }
    return (json.dumps(record) + "\n").encode()


def test_recent_predictions_are_the_logged_ones_newest_first(client, log_path):
    ids = [
        client.post(f"/classify/{m}", json=ADELIE).headers["X-Request-ID"]
        for m in ("svm", "randomforest", "gradientboosting")
    ]

    response = client.get("/predictions/recent")

    assert response.status_code == 200
    predictions = response.json()["predictions"]
    assert [p["request_id"] for p in predictions] == ids[::-1]
    assert predictions == read_log(log_path)[::-1]


def test_recent_predictions_on_a_big_log_are_bounded_in_lines_and_bytes(client, log_path):
    lines = [_line(index) for index in range(20_000)]  # ~5 MB
    log_path.write_bytes(b"".join(lines))

    few = client.get("/predictions/recent", params={"limit": 5}).json()
    most = client.get("/predictions/recent", params={"limit": reports.MAX_RECENT}).json()

    assert [p["request_id"] for p in few["predictions"]] == [
        f"r{i}" for i in range(19_999, 19_994, -1)
    ]
    assert len(most["predictions"]) == reports.MAX_RECENT
    assert most["predictions"][0]["request_id"] == "r19999"
    assert most["bytes_read"] <= reports.TAIL_BYTES
    assert (
        client.get("/predictions/recent", params={"limit": reports.MAX_RECENT + 1}).status_code
        == 422
    )


def test_recent_predictions_read_only_the_end_of_a_log_of_long_lines(client, log_path):
    # Fewer than `limit` lines fit in TAIL_BYTES: only those are returned, none cut in half.
    padding = "x" * (reports.TAIL_BYTES // 4)
    records = [json.loads(_line(i)) | {"note": padding} for i in range(10)]
    log_path.write_text("".join(json.dumps(r) + "\n" for r in records))

    body = client.get("/predictions/recent", params={"limit": 100}).json()

    assert 1 <= len(body["predictions"]) < 5
    assert body["predictions"][0]["request_id"] == "r9"
    assert body["bytes_read"] <= reports.TAIL_BYTES


def test_a_torn_last_line_and_garbage_lines_are_skipped(client, log_path):
    log_path.write_bytes(_line(1) + b"not json\n" + _line(2) + _line(3)[:40])

    body = client.get("/predictions/recent").json()

    assert [p["request_id"] for p in body["predictions"]] == ["r2", "r1"]
    assert body["skipped"] == 1


def test_reading_while_a_writer_appends_never_returns_a_partial_line(client, log_path):
    # One os.write per batch of lines on an O_APPEND descriptor, as the API's writers do.
    stop = threading.Event()
    written = []

    def write_batches() -> None:
        fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            batch = 0
            while not stop.is_set() and batch < 2000:
                os.write(fd, b"".join(_line(batch * 50 + i) for i in range(50)))
                written.append(batch)
                batch += 1
        finally:
            os.close(fd)

    writer = threading.Thread(target=write_batches)
    writer.start()
    try:
        answers = [
            client.get("/predictions/recent", params={"limit": 100}).json() for _ in range(60)
        ]
    finally:
        stop.set()
        writer.join(timeout=30)

    assert written, "the writer ran"
    for answer in answers:
        assert answer["skipped"] == 0
        ids = [int(p["request_id"][1:]) for p in answer["predictions"]]
        assert ids == sorted(ids, reverse=True)
        assert all(earlier - later == 1 for earlier, later in pairwise(ids))


def test_recent_predictions_without_a_log_or_with_a_symlink_are_empty(client, log_path, tmp_path):
    assert client.get("/predictions/recent").json()["predictions"] == []
    target = tmp_path / "elsewhere.log"
    target.write_bytes(_line(1))
    log_path.symlink_to(target)

    response = client.get("/predictions/recent")

    assert response.status_code == 200
    assert response.json()["predictions"] == []


def test_recent_predictions_do_not_take_the_writers_lock(client, log_path):
    import fcntl

    log_path.write_bytes(_line(1))
    with open(log_path, "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # a writer holding the lock for a long write
        response = client.get("/predictions/recent")

    assert [p["request_id"] for p in response.json()["predictions"]] == ["r1"]


# --- GET /predictions/stats --------------------------------------------------------------


def test_stats_count_predictions_per_model_and_species(client):
    assert client.get("/predictions/stats").json()["total"] == 0
    for _ in range(3):
        client.post("/classify/svm", json=ADELIE)
    client.post("/classify/randomforest/batch", json={"instances": [ADELIE] * 4})
    client.post("/classify/nosuch", json=ADELIE)
    client.post("/classify/svm", json={**ADELIE, "year": 1900})

    stats = client.get("/predictions/stats").json()

    assert stats["total"] == 7
    assert stats["by_model"] == {"randomforest": 4, "svm": 3}
    assert stats["by_species"] == {"Adelie": 7}
    assert {(c["model"], c["species"], c["count"]) for c in stats["counts"]} == {
        ("randomforest", "Adelie", 4),
        ("svm", "Adelie", 3),
    }


def test_stats_add_up_every_worker_in_multiprocess_mode(server_env, tmp_path):
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    env = {**server_env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    calls = 40
    with live_server(env, tmp_path / "server.out", workers=2) as server:
        # New connections are spread over the workers by the kernel.
        for _ in range(calls):
            assert httpx.post(f"{server.base_url}/classify/svm", json=ADELIE).status_code == 200
        totals = {
            httpx.get(f"{server.base_url}/predictions/stats").json()["total"] for _ in range(10)
        }

    assert totals == {calls}
    assert len(list(metrics_dir.glob("counter_*.db"))) >= 2, "both workers counted"


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/models/.."),
        ("GET", "/models/../confusion-matrix"),
        ("GET", "/models/svm/../../report/confusion-matrix"),
        ("GET", "/models/../../etc/passwd"),
        ("POST", "/classify/.."),
        ("GET", "/static/../main.py"),
        ("GET", "/static/ui/../../main.py"),
    ],
)
def test_raw_dot_segments_reach_nothing(live_api, method, path):
    # http.client sends the path as written; httpx and browsers would resolve the dots first.
    connection = http.client.HTTPConnection(live_api.removeprefix("http://"), timeout=30)
    try:
        body = json.dumps(ADELIE) if method == "POST" else None
        connection.request(method, path, body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()

    assert response.status == 404, (path, body)
    assert not body.startswith(PNG_SIGNATURE) and b"<html" not in body


@pytest.fixture(scope="module")
def live_api(module_server):
    return module_server.base_url
