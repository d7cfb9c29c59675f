"""POST /classify/{model}: seed shape, names, readable inputs, probabilities, errors."""

import json
import shutil
from datetime import datetime

import pytest
from support.api import ADELIE, read_log

from penguin_contract import FIELDS, SPECIES

PRESCRIBED = ["gradientboosting", "randomforest", "svm"]
JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize("name", PRESCRIBED)
def test_seed_example_is_an_adelie(client, name):
    response = client.post(f"/classify/{name}", json=ADELIE)

    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in ("model", "species_id", "species_name")} == {
        "model": name,
        "species_id": 1,
        "species_name": "Adelie",
    }
    assert response.headers["X-Request-ID"]


def test_model_names_are_case_insensitive(client):
    response = client.post("/classify/RandomForest", json=ADELIE)

    assert response.status_code == 200
    assert response.json()["model"] == "randomforest"


def test_probabilities_keyed_by_species_when_the_model_has_predict_proba(client):
    forest = client.post("/classify/randomforest", json=ADELIE).json()
    svm = client.post("/classify/svm", json=ADELIE).json()

    assert set(forest["probabilities"]) == set(SPECIES.values())
    assert sum(forest["probabilities"].values()) == pytest.approx(1.0)
    assert max(forest["probabilities"], key=forest["probabilities"].get) == "Adelie"
    assert svm["probabilities"] is None  # SVC without probability=True has no predict_proba


def test_readable_island_and_sex_are_accepted_and_logged_as_codes(client, log_path):
    gentoo = {
        "island": "BISCOE",
        "bill_length_mm": 46.1,
        "bill_depth_mm": 13.2,
        "flipper_length_mm": 211,
        "body_mass_g": 4500,
        "sex": "Female",
        "year": 2007,
    }

    response = client.post("/classify/svm", json=gentoo)

    assert response.status_code == 200
    assert response.json()["species_name"] == "Gentoo"
    [line] = read_log(log_path)
    assert line["input"]["island"] == 2
    assert line["input"]["sex"] == 0


def test_each_success_appends_one_complete_log_line_before_responding(client, log_path):
    first = client.post("/classify/randomforest", json=ADELIE, headers={"X-Request-ID": "abc-1"})
    second = client.post("/classify/svm", json=ADELIE)

    lines = read_log(log_path)
    assert len(lines) == 2
    assert first.headers["X-Request-ID"] == "abc-1"
    assert [line["request_id"] for line in lines] == ["abc-1", second.headers["X-Request-ID"]]
    line = lines[0]
    assert datetime.fromisoformat(line["timestamp"]).utcoffset().total_seconds() == 0
    assert line["input"] == {**ADELIE, "flipper_length_mm": 181.0, "body_mass_g": 3750.0}
    assert line["result"]["species_id"] == 1
    assert line["result"]["species_name"] == "Adelie"
    assert line["model"] == "randomforest"
    assert line["model_sha256"] == client.get("/models/randomforest").json()["sha256"]
    assert line["latency_ms"] > 0


def test_unknown_model_is_404_pointing_to_get_models(client, log_path):
    response = client.post("/classify/nosuchmodel", json=ADELIE)

    assert response.status_code == 404
    assert "GET /models" in response.json()["detail"]
    assert read_log(log_path) == []


def _field(name: str):
    return next(spec for spec in FIELDS if spec.name == name)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("bill_length_mm", 5),
        ("bill_length_mm", 100.5),
        ("bill_depth_mm", "deep"),
        ("flipper_length_mm", None),
        ("body_mass_g", 10001),
        ("island", 4),
        ("island", "Mars"),
        ("island", 1.5),
        ("sex", 2),
        ("sex", True),
        ("year", 1999),
        ("year", "2007"),
    ],
)
def test_invalid_field_is_422_naming_the_field_and_its_range(client, log_path, field, value):
    response = client.post("/classify/svm", json={**ADELIE, field: value})

    assert response.status_code == 422
    [issue] = response.json()["detail"]
    assert issue["field"] == field
    assert issue["allowed"] == _field(field).allowed()
    assert field in issue["msg"] and _field(field).allowed() in issue["msg"]
    assert read_log(log_path) == []


def test_missing_field_is_422_naming_it(client):
    body = {k: v for k, v in ADELIE.items() if k != "bill_depth_mm"}

    response = client.post("/classify/svm", json=body)

    assert response.status_code == 422
    [issue] = response.json()["detail"]
    assert issue["field"] == "bill_depth_mm"
    assert issue["type"] == "missing"
    assert "5 to 35" in issue["msg"]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_422(client, literal):
    raw = json.dumps(ADELIE).replace("39.1", literal)

    response = client.post("/classify/svm", content=raw, headers=JSON)

    assert response.status_code == 422
    [issue] = response.json()["detail"]
    assert issue["field"] == "bill_length_mm"
    assert "10 to 100" in issue["msg"]


@pytest.mark.parametrize(
    "raw", [b"not json", b'{"island": 1,', b"", b"[" * 100_000, b"[1, 2]", b'"text"']
)
def test_bodies_that_are_not_a_json_object_are_422(client, raw):
    response = client.post("/classify/svm", content=raw, headers=JSON)

    assert response.status_code == 422
    assert response.json()["detail"][0]["msg"]


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_body_above_the_size_limit_is_a_json_413(client, settings, log_path, declared):
    padding = " " * (settings.max_body_bytes + 1)
    raw = (json.dumps(ADELIE)[:-1] + padding + "}").encode()
    content = raw if declared else iter([raw[:1000], raw[1000:]])

    response = client.post("/classify/svm", content=content, headers=JSON)

    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"
    assert str(settings.max_body_bytes) in response.json()["detail"]
    assert not log_path.exists() or log_path.read_bytes() == b""


def test_best_is_the_highest_test_f1_and_ties_go_to_the_first_name(client, model_store):
    rows = model_store.report_rows()
    best = min(rows, key=lambda row: (-row["test_f1"], row["model"]))
    assert client.post("/classify/best", json=ADELIE).json()["model"] == best["model"]

    # A copy of the best model under an earlier name ties with it and wins by name.
    shutil.copy(model_store.model_path(best["model"]), model_store.model_path("aaa"))
    model_store.write_report_rows([*rows, {**best, "model": "aaa"}])

    assert client.post("/classify/BEST", json=ADELIE).json()["model"] == "aaa"


def test_best_without_any_report_row_is_404(client, model_store):
    model_store.report_path.unlink()
    model_store.report_json_path.unlink()

    response = client.post("/classify/best", json=ADELIE)

    assert response.status_code == 404
    assert "GET /models" in response.json()["detail"]


@pytest.mark.parametrize("supplied", ["has space", "x" * 200, "semi;colon", ""])
def test_an_unusable_client_request_id_is_replaced(client, log_path, supplied):
    response = client.post("/classify/svm", json=ADELIE, headers={"X-Request-ID": supplied})

    request_id = response.headers["X-Request-ID"]
    assert request_id != supplied and len(request_id) == 32
    assert read_log(log_path)[0]["request_id"] == request_id
