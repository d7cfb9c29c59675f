"""A report row describes one file (issue 9, 6): metrics and metadata are shown only for the
file whose sha256 the row records, invalid values are no metrics, and 'best' only considers
models whose row matches their file."""

import os
import shutil

import numpy as np
import pandas as pd
import pytest
from support.api import ADELIE

from app.report import parse_records


def _models(client) -> dict[str, dict]:
    return {m["name"]: m for m in client.get("/models").json()["available_models"]}


def test_a_replaced_file_does_not_inherit_the_old_row(client, model_store):
    assert _models(client)["randomforest"]["best"] is True  # test_f1 1.0 in the notebook
    staged = model_store.models_dir / ".swap"
    shutil.copy(model_store.model_path("svm"), staged)
    os.replace(staged, model_store.model_path("randomforest"))

    detail = client.get("/models/randomforest").json()
    best = client.post("/classify/best", json=ADELIE).json()

    assert detail["report_matches_file"] is False
    assert detail["metrics"] == dict.fromkeys(detail["metrics"])
    assert detail["estimator"] is None and detail["trained_at"] is None
    assert detail["best"] is False and best["model"] != "randomforest"


@pytest.mark.parametrize("bad", [2.0, -0.1, "1.0", True, None, float("nan")])
def test_a_metric_outside_zero_to_one_is_no_metric_and_never_wins_best(client, model_store, bad):
    rows = model_store.report_rows()
    for row in rows:
        row["test_f1"] = 0.5 if row["model"] != "svm" else bad
    if isinstance(bad, float) and bad != bad:
        model_store.report_json_path.unlink()  # JSON has no NaN: the pickled report holds it
        pd.DataFrame(rows).to_pickle(model_store.report_path)
    else:
        model_store.write_report_rows(rows)

    models = _models(client)

    assert models["svm"]["metrics"]["test_f1"] is None
    assert models["svm"]["best"] is False
    assert client.get("/models/best").json()["name"] != "svm"


def test_duplicate_rows_for_one_file_resolve_to_the_last(client, model_store):
    rows = model_store.report_rows()
    svm = next(row for row in rows if row["model"] == "svm")
    model_store.write_report_rows([*rows, {**svm, "test_f1": 0.25}, {**svm, "test_f1": 0.75}])

    assert _models(client)["svm"]["metrics"]["test_f1"] == 0.75


def test_params_the_json_encoder_cannot_take_do_not_break_the_description(client, model_store):
    model_store.report_json_path.unlink()
    frame = pd.read_pickle(model_store.report_path)
    frame["params"] = [{"weights": np.arange(3), "C": np.float64(1.0)}] * len(frame)
    frame.to_pickle(model_store.report_path)

    response = client.get("/models/svm")

    assert response.status_code == 200
    assert response.json()["params"]["weights"] == "[0 1 2]"


def test_rows_of_unexpected_types_are_skipped():
    rows = parse_records(
        [{"model": 3}, "text", {"model": "ok", "sha256": "ab", "classes": [1, "x"], "onnx": 1}]
    )

    assert [row.model for row in rows] == ["ok"]
    assert rows[0].metadata["classes"] is None and rows[0].metadata["onnx"] is None


def test_the_per_class_report_is_described_and_invalid_ones_are_dropped(client, model_store):
    described = client.get("/models/svm").json()["per_class"]
    assert set(described) == {"Adelie", "Chinstrap", "Gentoo"}
    assert all(0 <= scores["f1"] <= 1 and scores["support"] > 0 for scores in described.values())

    rows = model_store.report_rows()
    for row in rows:
        row["per_class"] = '{"Adelie": {"precision": 2.0, "recall": 1, "f1": 1, "support": 3}}'
    model_store.write_report_rows(rows)

    assert client.get("/models/svm").json()["per_class"] is None
