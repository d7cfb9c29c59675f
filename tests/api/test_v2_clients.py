"""Standard Open Inference Protocol clients against a live API: tritonclient and kserve.

Neither client was written here: they speak the protocol as Triton and KServe define it,
including Triton's binary tensor data extension (tritonclient's default both ways). Their
answers for all 333 real birds must equal POST /classify's, for every trained model.
"""

import asyncio

import numpy as np
import pytest
import tritonclient.http as triton
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
from kserve.protocol.infer_type import RequestedOutput
from support.api import body_from_row
from support.models import penguins
from tritonclient.utils import InferenceServerException

from penguin_contract import FEATURES, SPECIES

MODELS = ["randomforest", "svm", "gradientboosting"]
DTYPES = {"FP64": np.float64, "FP32": np.float32}


@pytest.fixture(scope="module")
def server(module_server):
    return module_server


@pytest.fixture(scope="module")
def birds() -> np.ndarray:
    return penguins()[list(FEATURES)].to_numpy(dtype=np.float64)


@pytest.fixture(scope="module")
def classify_answers(server):
    """Per model: species ids [333] and probabilities [333, 3] (or None), from POST /classify."""
    answers = {}
    with server.client() as client:
        for model in MODELS:
            ids, probabilities = [], []
            for _, row in penguins().iterrows():
                answer = client.post(f"/classify/{model}", json=body_from_row(row)).json()
                ids.append(answer["species_id"])
                if answer["probabilities"] is not None:
                    probabilities.append([answer["probabilities"][n] for n in SPECIES.values()])
            answers[model] = (np.array(ids), np.array(probabilities) if probabilities else None)
    return answers


@pytest.fixture
def triton_client(server):
    client = triton.InferenceServerClient(server.base_url.removeprefix("http://"))
    yield client
    client.close()


def assert_same_answers(expected, labels, probabilities):
    """Exactly /classify's: FP32 elements are read as the decimals the client printed."""
    expected_ids, expected_probabilities = expected
    np.testing.assert_array_equal(labels, expected_ids)
    if expected_probabilities is None:
        assert probabilities is None
    else:
        np.testing.assert_array_equal(probabilities, expected_probabilities)


# --- tritonclient[http] ----------------------------------------------------------------


def test_triton_client_health_and_metadata(triton_client, server):
    with server.client() as client:
        sha256 = client.get("/models/randomforest").json()["sha256"]

    assert triton_client.is_server_live()
    assert triton_client.is_server_ready()
    assert triton_client.is_model_ready("svm")
    assert triton_client.is_model_ready("best")
    assert not triton_client.is_model_ready("tree")
    metadata = triton_client.get_model_metadata("randomforest")
    assert metadata["name"] == "randomforest"
    assert metadata["versions"] == [sha256]
    assert metadata["inputs"] == [{"name": "features", "datatype": "FP64", "shape": [-1, 7]}]
    assert [output["name"] for output in metadata["outputs"]] == ["label", "probabilities"]
    assert "binary_tensor_data" in triton_client.get_server_metadata()["extensions"]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("datatype", DTYPES)
@pytest.mark.parametrize("binary_inputs", [True, False])
@pytest.mark.parametrize("binary_outputs", [True, False, None])
def test_triton_client_infer_equals_classify_for_every_bird(
    triton_client, birds, classify_answers, model, datatype, binary_inputs, binary_outputs
):
    features = triton.InferInput("features", list(birds.shape), datatype)
    features.set_data_from_numpy(birds.astype(DTYPES[datatype]), binary_data=binary_inputs)
    has_probabilities = classify_answers[model][1] is not None
    names = ["label", "probabilities"] if has_probabilities else ["label"]
    outputs = (  # None: no outputs listed, so the client asks for all of them in binary
        None
        if binary_outputs is None
        else [triton.InferRequestedOutput(name, binary_data=binary_outputs) for name in names]
    )

    result = triton_client.infer(model, [features], outputs=outputs, request_id="triton-1")

    assert result.get_response()["id"] == "triton-1"
    probabilities = result.as_numpy("probabilities")
    if probabilities is not None:
        probabilities = probabilities.reshape(len(birds), len(SPECIES))
    assert_same_answers(classify_answers[model], result.as_numpy("label"), probabilities)


def test_triton_client_sees_the_protocol_errors(triton_client, birds):
    invalid = birds[:2].copy()
    invalid[1, FEATURES.index("island")] = 9
    features = triton.InferInput("features", list(invalid.shape), "FP64")
    features.set_data_from_numpy(invalid)

    with pytest.raises(InferenceServerException) as bad_row:
        triton_client.infer("svm", [features])
    with pytest.raises(InferenceServerException) as unknown:
        triton_client.infer("tree", [features])

    assert bad_row.value.status() == "400"
    assert "island at row 1" in bad_row.value.message()
    assert unknown.value.status() == "404"
    assert "'tree'" in unknown.value.message()


# --- kserve's v2 REST client ------------------------------------------------------------


def kserve_infer(server, model, inputs, outputs=None):
    async def run():
        async with InferenceRESTClient(RESTConfig(protocol="v2", timeout=30)) as client:
            request = InferRequest(model, inputs, request_id="kserve-1", request_outputs=outputs)
            return await client.infer(server.base_url, request, model_name=model)

    return asyncio.run(run())


def test_kserve_client_health(server):
    async def run():
        async with InferenceRESTClient(RESTConfig(protocol="v2", timeout=30)) as client:
            return (
                await client.is_server_live(server.base_url),
                await client.is_server_ready(server.base_url),
                await client.is_model_ready(server.base_url, "gradientboosting"),
                await client.is_model_ready(server.base_url, "tree"),
            )

    assert asyncio.run(run()) == (True, True, True, False)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("datatype", DTYPES)
@pytest.mark.parametrize("binary_data", [True, False])
def test_kserve_client_infer_equals_classify_for_every_bird(
    server, birds, classify_answers, model, datatype, binary_data
):
    features = InferInput("features", list(birds.shape), datatype)
    features.set_data_from_numpy(birds.astype(DTYPES[datatype]), binary_data=binary_data)
    has_probabilities = classify_answers[model][1] is not None
    names = ["label", "probabilities"] if has_probabilities else ["label"]
    outputs = [RequestedOutput(name, {"binary_data": binary_data}) for name in names]

    response = kserve_infer(server, model, [features], outputs)

    assert response.id == "kserve-1"
    assert response.model_name == model
    by_name = {output.name: output.as_numpy() for output in response.outputs}
    probabilities = by_name.get("probabilities")
    if probabilities is not None:
        probabilities = probabilities.reshape(len(birds), len(SPECIES))
    assert_same_answers(classify_answers[model], by_name["label"], probabilities)


def test_kserve_client_with_one_input_per_field(server, birds, classify_answers):
    inputs = []
    for index, name in enumerate(FEATURES):
        tensor = InferInput(name, [len(birds)], "FP64")
        tensor.set_data_from_numpy(np.ascontiguousarray(birds[:, index]), binary_data=True)
        inputs.append(tensor)

    response = kserve_infer(server, "randomforest", inputs)

    by_name = {output.name: output.as_numpy() for output in response.outputs}
    probabilities = by_name["probabilities"].reshape(len(birds), len(SPECIES))
    assert_same_answers(classify_answers["randomforest"], by_name["label"], probabilities)
