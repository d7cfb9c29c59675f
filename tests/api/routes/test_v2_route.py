"""The Open Inference Protocol (v2) endpoints, through the app: JSON and binary tensors."""

import gzip
import json

import numpy as np
import pytest
from support.api import ADELIE, body_from_row, read_log
from support.models import penguins

from penguin_contract import FEATURES, SPECIES

MODELS = ["randomforest", "svm", "gradientboosting"]
HEADER_LENGTH = "Inference-Header-Content-Length"
ADELIE_ROW = [ADELIE[name] for name in FEATURES]
GENTOO_ROW = [2, 46.1, 13.2, 211, 4500, 0, 2007]
CLASSES = "1 Adelie,2 Chinstrap,3 Gentoo"


def matrix_input(rows, datatype="FP64", nested=True, name="features"):
    values = rows if nested else [value for row in rows for value in row]
    return {"name": name, "shape": [len(rows), 7], "datatype": datatype, "data": values}


def infer(client, model, inputs, **extra):
    return client.post(f"/v2/models/{model}/infer", json={"inputs": inputs, **extra})


def outputs_by_name(body):
    return {output["name"]: output for output in body["outputs"]}


def classify_answers(client, model, rows):
    """Species ids and probabilities (SPECIES order, or None) that /classify gives."""
    ids, probabilities = [], []
    for row in rows:
        answer = client.post(
            f"/classify/{model}", json=dict(zip(FEATURES, row, strict=True))
        ).json()
        ids.append(answer["species_id"])
        if answer["probabilities"] is not None:
            probabilities.append([answer["probabilities"][name] for name in SPECIES.values()])
    return ids, probabilities or None


def binary_request(header, *tensors):
    """A body in Triton's binary tensor data extension and its header-length header."""
    encoded = json.dumps(header).encode()
    return encoded + b"".join(tensors), {HEADER_LENGTH: str(len(encoded))}


def binary_matrix_header(rows, dtype, outputs=None, parameters=None):
    array = np.asarray(rows, dtype=dtype)
    header = {
        "inputs": [
            {
                "name": "features",
                "shape": list(array.shape),
                "datatype": {"<f8": "FP64", "<f4": "FP32", "<i8": "INT64"}[dtype],
                "parameters": {"binary_data_size": array.nbytes},
            }
        ]
    }
    if outputs is not None:
        header["outputs"] = outputs
    if parameters is not None:
        header["parameters"] = parameters
    return header, array.tobytes()


def split_binary_response(response):
    """(JSON header, {output name: raw bytes}) of a binary tensor data response."""
    length = int(response.headers[HEADER_LENGTH])
    header = json.loads(response.content[:length])
    raw, offset = {}, length
    for output in header["outputs"]:
        size = output.get("parameters", {}).get("binary_data_size")
        if size is not None:
            raw[output["name"]] = response.content[offset : offset + size]
            offset += size
    assert offset == len(response.content)
    return header, raw


# --- Health and metadata ---------------------------------------------------------------


def test_server_metadata_live_and_ready(client):
    metadata = client.get("/v2")
    live = client.get("/v2/health/live")
    ready = client.get("/v2/health/ready")

    assert metadata.status_code == 200
    assert metadata.json()["name"] == "penguin-classifier"
    assert metadata.json()["version"] == client.app.version
    assert "binary_tensor_data" in metadata.json()["extensions"]
    assert (live.status_code, live.json()) == (200, {"live": True})
    assert (ready.status_code, ready.json()) == (200, {"ready": True})


def test_server_is_not_ready_when_the_models_directory_is_missing(client, settings):
    settings.models_dir.rename(settings.models_dir.with_name("moved"))

    response = client.get("/v2/health/ready")

    assert (response.status_code, response.json()) == (400, {"ready": False})


@pytest.mark.parametrize("model", MODELS)
def test_model_metadata_comes_from_the_contract_and_the_served_file(client, model):
    detail = client.get(f"/models/{model}").json()

    metadata = client.get(f"/v2/models/{model}")

    assert metadata.status_code == 200
    body = metadata.json()
    assert body["name"] == model
    assert body["versions"] == [detail["sha256"]]
    assert body["platform"] == {"onnx": "onnxruntime_onnx", "sklearn": "sklearn"}[detail["runtime"]]
    assert body["inputs"] == [{"name": "features", "datatype": "FP64", "shape": [-1, 7]}]
    expected_outputs = [{"name": "label", "datatype": "INT64", "shape": [-1]}]
    if detail["probabilities"]:
        expected_outputs.append({"name": "probabilities", "datatype": "FP64", "shape": [-1, 3]})
    assert body["outputs"] == expected_outputs


def test_best_resolves_as_on_classify(client):
    best = client.post("/classify/best", json=ADELIE).json()["model"]

    assert client.get("/v2/models/best").json()["name"] == best
    assert client.get("/v2/models/BEST/ready").json() == {"name": best, "ready": True}
    assert infer(client, "best", [matrix_input([ADELIE_ROW])]).json()["model_name"] == best


def test_model_ready_is_200_for_a_usable_model_and_400_for_a_broken_file(client, settings):
    (settings.models_dir / "broken_model.pkl").write_bytes(b"not a pickle")

    usable = client.get("/v2/models/svm/ready")
    broken = client.get("/v2/models/broken/ready")

    assert (usable.status_code, usable.json()) == (200, {"name": "svm", "ready": True})
    assert broken.status_code == 400
    assert broken.json()["ready"] is False
    assert "broken" in broken.json()["error"]


@pytest.mark.parametrize(
    "path", ["/v2/models/tree", "/v2/models/tree/ready", "/v2/models/Bad%20Name"]
)
def test_unknown_models_are_404_with_the_protocol_error_body(client, path):
    response = client.get(path)

    assert response.status_code == 404
    assert set(response.json()) == {"error"}
    assert "not found" in response.json()["error"]


def test_unknown_model_on_infer_is_404_with_the_protocol_error_body(client, log_path):
    response = infer(client, "tree", [matrix_input([ADELIE_ROW])])

    assert response.status_code == 404
    assert list(response.json()) == ["error"]
    assert "'tree'" in response.json()["error"]
    assert read_log(log_path) == []


def test_the_rest_of_the_api_keeps_its_own_error_body(client):
    response = client.get("/models/tree")

    assert response.status_code == 404
    assert set(response.json()) == {"detail", "code"}


def test_the_served_version_answers_and_any_other_is_404(client):
    version = client.get("/v2/models/svm").json()["versions"][0]
    inputs = [matrix_input([ADELIE_ROW])]

    served = client.post(f"/v2/models/svm/versions/{version}/infer", json={"inputs": inputs})
    other = client.post("/v2/models/svm/versions/1/infer", json={"inputs": inputs})

    assert served.status_code == 200
    assert served.json()["model_version"] == version
    assert client.get(f"/v2/models/svm/versions/{version}/ready").status_code == 200
    assert client.get(f"/v2/models/svm/versions/{version}").json()["versions"] == [version]
    assert other.status_code == 404
    assert version in other.json()["error"]


# --- Inference (JSON) ------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_every_real_bird_gets_the_answer_classify_gives(client, model):
    rows = [[row[name] for name in FEATURES] for _, row in penguins().iterrows()]
    expected = client.post(
        f"/classify/{model}/batch",
        json={"instances": [body_from_row(row) for _, row in penguins().iterrows()]},
    ).json()["predictions"]

    response = infer(client, model, [matrix_input(rows)])

    assert response.status_code == 200
    outputs = outputs_by_name(response.json())
    assert outputs["label"]["shape"] == [len(rows)]
    assert outputs["label"]["data"] == [answer["species_id"] for answer in expected]
    if expected[0]["probabilities"] is None:
        assert set(outputs) == {"label"}
    else:
        probabilities = np.array(outputs["probabilities"]["data"]).reshape(len(rows), 3)
        by_name = [[a["probabilities"][n] for n in SPECIES.values()] for a in expected]
        assert outputs["probabilities"]["shape"] == [len(rows), 3]
        np.testing.assert_array_equal(probabilities, by_name)


def test_outputs_state_the_species_order(client):
    response = infer(client, "randomforest", [matrix_input([ADELIE_ROW, GENTOO_ROW])])

    outputs = outputs_by_name(response.json())
    assert outputs["label"]["datatype"] == "INT64"
    assert outputs["label"]["data"] == [1, 3]
    assert outputs["probabilities"]["datatype"] == "FP64"
    assert outputs["probabilities"]["parameters"]["classes"] == CLASSES
    assert np.argmax(np.reshape(outputs["probabilities"]["data"], (2, 3)), axis=1).tolist() == [
        0,
        2,
    ]


@pytest.mark.parametrize("datatype", ["FP64", "FP32"])
@pytest.mark.parametrize("nested", [True, False])
def test_float_matrices_flat_or_nested(client, datatype, nested):
    rows = [ADELIE_ROW, GENTOO_ROW]

    response = infer(client, "svm", [matrix_input(rows, datatype, nested)])

    assert response.status_code == 200
    assert (
        outputs_by_name(response.json())["label"]["data"]
        == classify_answers(client, "svm", rows)[0]
    )


def test_int64_matrix_of_integral_measurements(client):
    rows = [[1, 39, 19, 181, 3750, 1, 2007], [2, 46, 13, 211, 4500, 0, 2007]]

    response = infer(client, "gradientboosting", [matrix_input(rows, "INT64")])

    assert response.status_code == 200
    expected = classify_answers(client, "gradientboosting", rows)
    outputs = outputs_by_name(response.json())
    assert outputs["label"]["data"] == expected[0]
    np.testing.assert_array_equal(np.reshape(outputs["probabilities"]["data"], (2, 3)), expected[1])


def test_one_input_per_field_with_their_own_datatypes(client):
    rows = [ADELIE_ROW, GENTOO_ROW]
    integer_fields = {"island", "sex", "year"}
    inputs = [
        {
            "name": name,
            "shape": [len(rows)],
            "datatype": "INT64" if name in integer_fields else "FP32",
            "data": [row[index] for row in rows],
        }
        for index, name in reversed(list(enumerate(FEATURES)))  # any order of the inputs
    ]

    response = infer(client, "randomforest", inputs)

    assert response.status_code == 200
    assert outputs_by_name(response.json())["label"]["data"] == [1, 3]


def test_requested_outputs_only_and_in_their_order(client):
    inputs = [matrix_input([ADELIE_ROW])]

    only_probabilities = infer(
        client, "randomforest", inputs, outputs=[{"name": "probabilities"}]
    ).json()
    both = infer(
        client, "randomforest", inputs, outputs=[{"name": "probabilities"}, {"name": "label"}]
    ).json()

    assert [output["name"] for output in only_probabilities["outputs"]] == ["probabilities"]
    assert [output["name"] for output in both["outputs"]] == ["probabilities", "label"]


@pytest.mark.parametrize(
    ("model", "output"), [("svm", "probabilities"), ("randomforest", "species")]
)
def test_an_output_the_model_does_not_have_is_400_and_not_logged(client, log_path, model, output):
    response = infer(client, model, [matrix_input([ADELIE_ROW])], outputs=[{"name": output}])

    assert response.status_code == 400
    assert output in response.json()["error"]
    assert read_log(log_path) == []


def test_the_request_id_is_echoed_and_the_log_has_one_line_per_row(client, log_path):
    rows = [ADELIE_ROW, GENTOO_ROW, ADELIE_ROW]

    response = infer(client, "svm", [matrix_input(rows)], id="my-request-42")

    assert response.json()["id"] == "my-request-42"
    lines = read_log(log_path)
    assert len(lines) == len(rows)
    assert {line["request_id"] for line in lines} == {response.headers["X-Request-ID"]}
    assert [line["batch_index"] for line in lines] == [0, 1, 2]
    assert [list(line["input"].values()) for line in lines] == rows


def test_without_an_id_the_response_carries_the_logged_request_id(client):
    response = infer(client, "svm", [matrix_input([ADELIE_ROW])])

    assert response.json()["id"] == response.headers["X-Request-ID"]


def test_predictions_are_counted_by_model_and_species(client):
    infer(client, "svm", [matrix_input([ADELIE_ROW, ADELIE_ROW, GENTOO_ROW])])

    metrics = client.get("/metrics").text
    assert 'penguin_predictions_total{model="svm",species="Adelie"} 2.0' in metrics
    assert 'penguin_predictions_total{model="svm",species="Gentoo"} 1.0' in metrics


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ([7, 39.1, 18.7, 181, 3750, 1, 2007], "island"),
        ([1, 39.1, 18.7, 181, 50, 1, 2007], "body_mass_g"),
        ([1, 39.1, 18.7, 181, 3750, 0.5, 2007], "sex"),
        ([1, 39.1, 18.7, 181, 3750, 1, 2007.5], "year"),
        ([1, float("nan"), 18.7, 181, 3750, 1, 2007], "bill_length_mm"),
    ],
)
@pytest.mark.parametrize("position", [1, 7])  # a few rows, and more than a few
def test_invalid_values_are_400_naming_field_and_row(client, log_path, row, field, position):
    rows = [ADELIE_ROW] * position + [row] + [GENTOO_ROW] * 2
    header, raw = binary_matrix_header(rows, "<f8")
    body, headers = binary_request(header, raw)

    response = client.post("/v2/models/svm/infer", content=body, headers=headers)

    assert response.status_code == 400
    message = response.json()["error"]
    assert f"{field} at row {position}" in message
    assert message.count(" at row ") == 1
    assert read_log(log_path) == []


@pytest.mark.parametrize(
    ("inputs", "fragment"),
    [
        ([{**matrix_input([ADELIE_ROW[:6]]), "shape": [1, 6]}], "[N, 7]"),
        ([{**matrix_input([ADELIE_ROW]), "shape": [2, 7]}], "needs 14 values"),
        ([matrix_input([ADELIE_ROW], "BYTES")], "BYTES"),
        ([matrix_input([ADELIE_ROW], "INT64")], "not a INT64 value"),
        ([matrix_input([ADELIE_ROW], "INT8")], "not a INT8 value"),
        ([{**matrix_input([ADELIE_ROW]), "data": ["a"] * 7}], "must be numbers"),
        ([{**matrix_input([ADELIE_ROW]), "data": None}], "no data"),
        ([{"name": "island", "shape": [1], "datatype": "FP64", "data": [1]}], "one input"),
        ([], "inputs"),
    ],
)
def test_malformed_tensors_are_400_with_the_protocol_error_body(client, inputs, fragment):
    response = infer(client, "svm", inputs)

    assert response.status_code == 400
    assert list(response.json()) == ["error"]
    assert fragment in response.json()["error"]


def test_a_body_that_is_not_json_is_400(client):
    response = client.post("/v2/models/svm/infer", content=b"{not json")

    assert response.status_code == 400
    assert "Invalid JSON" in response.json()["error"]


def test_the_batch_limit_is_checked_before_the_rows_and_answers_413(client, settings, log_path):
    limit = settings.max_batch_size
    too_many = [[0] * 7] * (limit + 1)  # invalid rows: the size is refused first

    accepted = infer(client, "svm", [matrix_input([ADELIE_ROW] * limit, nested=False)])
    rejected = infer(client, "svm", [matrix_input(too_many)])

    assert accepted.status_code == 200
    assert rejected.status_code == 413
    assert list(rejected.json()) == ["error"]
    assert str(limit) in rejected.json()["error"]
    assert len(read_log(log_path)) == limit


def test_a_body_above_max_body_bytes_is_413_with_the_protocol_error_body(client, settings):
    body = b" " * (settings.max_body_bytes + 1)

    response = client.post("/v2/models/svm/infer", content=body)

    assert response.status_code == 413
    assert list(response.json()) == ["error"]
    assert str(settings.max_body_bytes) in response.json()["error"]


# --- Binary tensor data extension -------------------------------------------------------


@pytest.mark.parametrize("dtype", ["<f8", "<f4", "<i8"])
def test_binary_inputs_give_json_outputs_by_default(client, dtype):
    rows = [[1, 39, 19, 181, 3750, 1, 2007], [2, 46, 13, 211, 4500, 0, 2007]]
    header, raw = binary_matrix_header(rows, dtype)
    body, headers = binary_request(header, raw)

    response = client.post("/v2/models/randomforest/infer", content=body, headers=headers)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert HEADER_LENGTH not in response.headers
    expected = classify_answers(client, "randomforest", rows)
    assert outputs_by_name(response.json())["label"]["data"] == expected[0]


def test_binary_outputs_when_the_request_asks_for_all_of_them(client):
    rows = [ADELIE_ROW, GENTOO_ROW]
    header, raw = binary_matrix_header(rows, "<f8", parameters={"binary_data_output": True})
    body, headers = binary_request(header, raw)

    response = client.post("/v2/models/randomforest/infer", content=body, headers=headers)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    header, raw = split_binary_response(response)
    outputs = outputs_by_name(header)
    assert "data" not in outputs["label"] and "data" not in outputs["probabilities"]
    assert outputs["probabilities"]["parameters"]["classes"] == CLASSES
    expected = classify_answers(client, "randomforest", rows)
    assert np.frombuffer(raw["label"], "<i8").tolist() == expected[0]
    probabilities = np.frombuffer(raw["probabilities"], "<f8").reshape(2, 3)
    np.testing.assert_array_equal(probabilities, expected[1])


def test_each_output_chooses_binary_or_json_overriding_the_request(client):
    header, raw = binary_matrix_header(
        [ADELIE_ROW],
        "<f8",
        outputs=[
            {"name": "label", "parameters": {"binary_data": False}},
            {"name": "probabilities"},
        ],
        parameters={"binary_data_output": True},
    )
    body, headers = binary_request(header, raw)

    response = client.post("/v2/models/randomforest/infer", content=body, headers=headers)

    header, raw = split_binary_response(response)
    outputs = outputs_by_name(header)
    assert outputs["label"]["data"] == [1]
    assert list(raw) == ["probabilities"]
    assert np.frombuffer(raw["probabilities"], "<f8").shape == (3,)


def test_binary_and_json_inputs_mix_in_one_request(client):
    rows = np.array([ADELIE_ROW, GENTOO_ROW])
    inputs, raw = [], []
    for index, name in enumerate(FEATURES):
        column = np.ascontiguousarray(rows[:, index])
        if index % 2:
            inputs.append({"name": name, "shape": [2], "datatype": "FP64", "data": list(column)})
        else:
            size = column.astype("<f4").nbytes
            tensor = {"name": name, "shape": [2], "datatype": "FP32"}
            inputs.append({**tensor, "parameters": {"binary_data_size": size}})
            raw.append(column.astype("<f4").tobytes())
    body, headers = binary_request({"inputs": inputs}, *raw)

    response = client.post("/v2/models/svm/infer", content=body, headers=headers)

    assert response.status_code == 200
    assert outputs_by_name(response.json())["label"]["data"] == [1, 3]


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda body, headers: (body, {HEADER_LENGTH: "abc"}), HEADER_LENGTH),
        (lambda body, headers: (body, {HEADER_LENGTH: str(len(body) + 1)}), HEADER_LENGTH),
        (lambda body, headers: (body, {HEADER_LENGTH: "0"}), HEADER_LENGTH),
        (lambda body, headers: (body[:-8], headers), "does not fit"),
        (lambda body, headers: (body + b"\0" * 8, headers), "belong to no input"),
        (lambda body, headers: (body, {}), "Invalid JSON"),
        (
            lambda body, headers: (body, {HEADER_LENGTH: str(int(headers[HEADER_LENGTH]) - 1)}),
            "Invalid JSON",
        ),
    ],
)
def test_malformed_binary_requests_are_400(client, log_path, change, fragment):
    header, raw = binary_matrix_header([ADELIE_ROW], "<f8")
    body, headers = change(*binary_request(header, raw))

    response = client.post("/v2/models/svm/infer", content=body, headers=headers)

    assert response.status_code == 400
    assert fragment in response.json()["error"]
    assert read_log(log_path) == []


def test_a_binary_size_that_disagrees_with_the_shape_is_400(client):
    header, raw = binary_matrix_header([ADELIE_ROW, GENTOO_ROW], "<f8")
    header["inputs"][0]["shape"] = [1, 7]

    body, headers = binary_request(header, raw)
    response = client.post("/v2/models/svm/infer", content=body, headers=headers)

    assert response.status_code == 400
    assert "needs 56" in response.json()["error"]


def test_fp32_binary_rows_get_the_answers_of_their_decimals(client):
    rows = [[row[name] for name in FEATURES] for _, row in penguins().iterrows()]
    header, raw = binary_matrix_header(rows, "<f4")
    body, headers = binary_request(header, raw)
    as_float64 = infer(client, "randomforest", [matrix_input(rows)]).json()

    response = client.post("/v2/models/randomforest/infer", content=body, headers=headers)

    assert response.status_code == 200
    assert response.json()["outputs"] == as_float64["outputs"]


def test_a_single_row_is_logged_as_classify_logs_one(client, log_path):
    classify = client.post("/classify/svm", json=ADELIE)
    v2 = infer(client, "svm", [matrix_input([ADELIE_ROW])])

    classify_line, v2_line = read_log(log_path)
    assert v2_line["request_id"] == v2.headers["X-Request-ID"] != classify.headers["X-Request-ID"]
    assert set(v2_line) == set(classify_line)
    assert (v2_line["input"], v2_line["result"]) == (
        classify_line["input"],
        classify_line["result"],
    )


def test_a_compressed_body_is_refused_with_a_clear_400(client):
    body = gzip.compress(json.dumps({"inputs": [matrix_input([ADELIE_ROW])]}).encode())

    response = client.post(
        "/v2/models/svm/infer", content=body, headers={"Content-Encoding": "gzip"}
    )

    assert response.status_code == 400
    assert "Content-Encoding 'gzip' is not supported" in response.json()["error"]
