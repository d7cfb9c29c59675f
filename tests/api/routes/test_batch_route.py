"""POST /classify/{model}/batch."""

import pytest
from support.api import ADELIE, body_from_row, read_log
from support.models import penguins

from penguin_contract import SPECIES


def test_batch_predicts_each_row_in_order_and_logs_one_line_per_row(client, log_path):
    data = penguins()
    rows = data.groupby("species").head(3).sort_values("id")
    instances = [body_from_row(row) for _, row in rows.iterrows()]

    response = client.post("/classify/randomforest/batch", json={"instances": instances})

    assert response.status_code == 200
    body = response.json()
    assert body["model"] == "randomforest"
    assert body["request_id"] == response.headers["X-Request-ID"]
    expected = [SPECIES[code] for code in rows["species"]]
    assert [p["species_name"] for p in body["predictions"]] == expected
    lines = read_log(log_path)
    assert len(lines) == len(instances)
    assert {line["request_id"] for line in lines} == {body["request_id"]}
    assert [line["batch_index"] for line in lines] == list(range(len(instances)))
    assert {line["batch_size"] for line in lines} == {len(instances)}
    assert [line["input"] for line in lines] == instances


def test_batch_accepts_the_maximum_and_rejects_more_with_413(client, settings, log_path):
    limit = settings.max_batch_size
    assert limit >= 1000

    accepted = client.post("/classify/svm/batch", json={"instances": [ADELIE] * limit})
    rejected = client.post("/classify/svm/batch", json={"instances": [ADELIE] * (limit + 1)})

    assert accepted.status_code == 200
    assert len(accepted.json()["predictions"]) == limit
    assert rejected.status_code == 413
    assert str(limit) in rejected.json()["detail"]
    assert len(read_log(log_path)) == limit


@pytest.mark.parametrize(
    "body", [{"instances": []}, {}, {"instances": ADELIE}, [ADELIE], {"instances": [{}]}]
)
def test_malformed_batches_are_422(client, body):
    assert client.post("/classify/svm/batch", json=body).status_code == 422


def test_one_invalid_row_rejects_the_batch_naming_row_and_field(client, log_path):
    instances = [ADELIE, {**ADELIE, "body_mass_g": 50}]

    response = client.post("/classify/svm/batch", json={"instances": instances})

    assert response.status_code == 422
    [issue] = response.json()["detail"]
    assert issue["loc"] == ["body", "instances", 1, "body_mass_g"]
    assert issue["field"] == "body_mass_g"
    assert "1000 to 10000" in issue["msg"]
    assert read_log(log_path) == []


def test_batch_on_unknown_model_is_404(client):
    response = client.post("/classify/nosuch/batch", json={"instances": [ADELIE]})

    assert response.status_code == 404
    assert "GET /models" in response.json()["detail"]


def _columns(instances):
    return {name: [instance[name] for instance in instances] for name in instances[0]}


def test_columnar_batch_gives_the_same_predictions_and_log_as_instances(client, log_path):
    data = penguins()
    instances = [body_from_row(row) for _, row in data.iloc[::40].iterrows()]

    by_rows = client.post("/classify/gradientboosting/batch", json={"instances": instances})
    by_columns = client.post(
        "/classify/gradientboosting/batch", json={"columns": _columns(instances)}
    )

    assert by_columns.status_code == 200
    assert by_columns.json()["predictions"] == by_rows.json()["predictions"]
    lines = read_log(log_path)
    half = len(lines) // 2
    assert [line["input"] for line in lines[half:]] == [line["input"] for line in lines[:half]]


def test_columnar_batch_accepts_names_and_checks_every_value(client):
    columns = _columns([ADELIE, ADELIE])
    columns["island"] = ["torgersen", "TORGERSEN"]
    assert client.post("/classify/svm/batch", json={"columns": columns}).status_code == 200

    columns["bill_depth_mm"] = [18.7, 99]
    response = client.post("/classify/svm/batch", json={"columns": columns})

    assert response.status_code == 422
    [issue] = response.json()["detail"]
    assert issue["loc"] == ["body", "columns", "bill_depth_mm", 1]
    assert issue["field"] == "bill_depth_mm"
    assert "5 to 35" in issue["msg"]


def test_columns_of_different_lengths_are_422(client, log_path):
    columns = _columns([ADELIE, ADELIE])
    columns["year"] = [2007]

    response = client.post("/classify/svm/batch", json={"columns": columns})

    assert response.status_code == 422
    assert "same length" in response.json()["detail"][0]["msg"]
    assert read_log(log_path) == []


def test_columnar_batch_above_the_limit_is_413(client, settings):
    columns = _columns([ADELIE] * (settings.max_batch_size + 1))

    response = client.post("/classify/svm/batch", json={"columns": columns})

    assert response.status_code == 413


def test_a_body_with_both_shapes_is_422(client):
    body = {"columns": _columns([ADELIE]), "instances": [ADELIE]}

    assert client.post("/classify/svm/batch", json=body).status_code == 422


@pytest.mark.parametrize("path", ["/classify/svm", "/classify/svm/batch"])
def test_an_empty_body_is_422_asking_for_a_json_body(client, path, log_path):
    response = client.post(path, content=b"", headers={"content-type": "application/json"})

    assert response.status_code == 422
    [issue] = response.json()["detail"]
    assert issue["loc"] == ["body"] and issue["type"] == "missing"
    assert issue["msg"].startswith("A JSON body is required")
    assert read_log(log_path) == []
