"""Predictions as the protocol's output tensors: which outputs, JSON or binary, and the body."""

from dataclasses import dataclass

import numpy as np
import orjson

from app.errors import InferenceRequestError
from app.v2.schemas import BINARY_DATA, BINARY_DATA_OUTPUT, BINARY_DATA_SIZE, InferenceRequest
from penguin_contract import SPECIES

LABEL_OUTPUT = "label"
PROBABILITIES_OUTPUT = "probabilities"
# Stated in both outputs' parameters: label values are these ids, probability columns follow it.
CLASSES_PARAMETER = "classes"
CLASSES = ",".join(f"{code} {name}" for code, name in SPECIES.items())


@dataclass(frozen=True, slots=True)
class OutputTensor:
    name: str
    datatype: str
    values: np.ndarray  # already of the datatype's little-endian NumPy type
    binary: bool


def requested_outputs(request: InferenceRequest, has_probabilities: bool) -> list[tuple[str, bool]]:
    """(name, as binary) of each output to return, in the request's order (all by default)."""
    available = [LABEL_OUTPUT, PROBABILITIES_OUTPUT] if has_probabilities else [LABEL_OUTPUT]
    default_binary = (request.parameters or {}).get(BINARY_DATA_OUTPUT) is True
    if request.outputs is None:
        return [(name, default_binary) for name in available]
    chosen = []
    for output in request.outputs:
        if output.name not in available or output.name in dict(chosen):
            raise InferenceRequestError(
                f"output {output.name!r} is not one of this model's outputs ({available}) "
                "or is requested twice"
            )
        binary = (output.parameters or {}).get(BINARY_DATA, default_binary)
        chosen.append((output.name, binary is True))
    return chosen


def output_tensors(
    wanted: list[tuple[str, bool]], species_ids: np.ndarray, probabilities: np.ndarray | None
) -> list[OutputTensor]:
    tensors = []
    for name, binary in wanted:
        if name == LABEL_OUTPUT:
            tensors.append(OutputTensor(name, "INT64", np.asarray(species_ids, "<i8"), binary))
        else:
            tensors.append(OutputTensor(name, "FP64", np.asarray(probabilities, "<f8"), binary))
    return tensors


def encode_response(
    model_name: str,
    model_version: str,
    request_id: str,
    parameters: dict[str, str],
    outputs: list[OutputTensor],
) -> tuple[bytes, int | None]:
    """The response body, and the JSON header's length when binary tensors follow it."""
    header = {
        "model_name": model_name,
        "model_version": model_version,
        "id": request_id,
        "parameters": parameters,
        "outputs": [_output_json(output) for output in outputs],
    }
    encoded = orjson.dumps(header, option=orjson.OPT_SERIALIZE_NUMPY)
    binary = [output.values.tobytes() for output in outputs if output.binary]
    if not binary:
        return encoded, None
    return b"".join([encoded, *binary]), len(encoded)


def _output_json(output: OutputTensor) -> dict:
    tensor = {
        "name": output.name,
        "datatype": output.datatype,
        "shape": list(output.values.shape),
        "parameters": {CLASSES_PARAMETER: CLASSES},
    }
    if output.binary:
        tensor["parameters"][BINARY_DATA_SIZE] = output.values.nbytes
    else:
        tensor["data"] = output.values.reshape(-1)
    return tensor
