"""Predictions as the protocol's output tensors, in the JSON or as binary data after it."""

import numpy as np
import orjson

from app.errors import InferenceRequestError
from app.predict import Predictions
from app.v2.tensors import InferenceRequest
from penguin_contract import SPECIES

# In both outputs' parameters: label values are these codes, probability columns follow them.
CLASSES = ",".join(f"{code} {name}" for code, name in SPECIES.items())


def output_metadata(has_probabilities: bool) -> list[dict]:
    """The model's outputs as its metadata lists them (-1: the batch's dimension)."""
    label = {"name": "label", "datatype": "INT64", "shape": [-1]}
    probabilities = {"name": "probabilities", "datatype": "FP64", "shape": [-1, len(SPECIES)]}
    return [label, probabilities] if has_probabilities else [label]


def requested_outputs(request: InferenceRequest, has_probabilities: bool) -> dict[str, bool]:
    """Each output to send and whether as binary data, in the request's order (default: all)."""
    available = [output["name"] for output in output_metadata(has_probabilities)]
    default_binary = (request.parameters or {}).get("binary_data_output") is True
    if request.outputs is None:
        return dict.fromkeys(available, default_binary)
    wanted: dict[str, bool] = {}
    for output in request.outputs:
        if output.name not in available or output.name in wanted:
            raise InferenceRequestError(
                f"output {output.name!r} is not one of this model's outputs ({available}) "
                "or is requested twice"
            )
        wanted[output.name] = (output.parameters or {}).get("binary_data", default_binary) is True
    return wanted


def encode_response(
    header: dict, wanted: dict[str, bool], predictions: Predictions
) -> tuple[bytes, int | None]:
    """The body, and the JSON header's length when binary tensors follow it."""
    tensors, binary = [], []
    for name, as_binary in wanted.items():
        if name == "label":
            datatype, values = "INT64", np.asarray(predictions.species_ids, "<i8")
        else:
            datatype, values = "FP64", np.asarray(predictions.probabilities, "<f8")
        tensor = {
            "name": name,
            "datatype": datatype,
            "shape": list(values.shape),
            "parameters": {"classes": CLASSES},
        }
        if as_binary:
            tensor["parameters"]["binary_data_size"] = values.nbytes
            binary.append(values.tobytes())
        else:
            tensor["data"] = values.reshape(-1)
        tensors.append(tensor)
    json_header = orjson.dumps({**header, "outputs": tensors}, option=orjson.OPT_SERIALIZE_NUMPY)
    if not binary:
        return json_header, None
    return b"".join([json_header, *binary]), len(json_header)
