"""Request tensors to an [N, 7] float64 array in FEATURES order, and predictions to tensors.

Two input layouts are accepted: one tensor [N, 7] (columns in FEATURES order, any name that is
not a field's), or one tensor [N] per contract field, named after it. Data come as JSON
("data", row-major, flat or nested) or, with Triton's binary tensor data extension, as raw
little-endian bytes after the JSON header (Inference-Header-Content-Length gives its length;
each binary input states its "binary_data_size", in the order of the inputs).

Integer datatypes must carry integers within their range. An FP32 (or FP16) element is read
as the shortest decimal that rounds to it, the number its sender printed: 39.1 sent as FP32 is
39.09999847 on the wire and 39.1 here, so FP32 requests get /classify's answers (scikit-learn's
trees compare in float32 after scaling, and a value one float32 step away can cross a split).
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import orjson
from pydantic import ValidationError

from app.v2.errors import InferenceProtocolError
from app.v2.schemas import (
    BINARY_DATA,
    BINARY_DATA_OUTPUT,
    BINARY_DATA_SIZE,
    InferenceRequest,
    RequestInput,
)
from penguin_contract import FEATURES, SPECIES

HEADER_LENGTH_HEADER = "Inference-Header-Content-Length"
# The tensor datatypes read as features, and their little-endian NumPy types.
DATATYPES: dict[str, np.dtype] = {
    name: np.dtype(code)
    for name, code in {
        "FP64": "<f8",
        "FP32": "<f4",
        "FP16": "<f2",
        "INT64": "<i8",
        "INT32": "<i4",
        "INT16": "<i2",
        "INT8": "i1",
        "UINT64": "<u8",
        "UINT32": "<u4",
        "UINT16": "<u2",
        "UINT8": "u1",
    }.items()
}
LABEL_OUTPUT = "label"
PROBABILITIES_OUTPUT = "probabilities"
# Stated in both outputs' parameters: label values are these ids, probability columns follow it.
CLASSES_PARAMETER = "classes"
CLASSES = ",".join(f"{code} {name}" for code, name in SPECIES.items())
MAX_REPORTED_ERRORS = 5
_NUMERIC_KINDS = frozenset("iuf")
_SMALL_TENSOR = 512  # elements; below this, printing each float is the cheaper way


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    """The JSON header, each input's binary data (None for inputs given as JSON), and the
    inputs' layout ("matrix" or "columns") and N, read from the shapes alone."""

    request: InferenceRequest
    binary: tuple[memoryview | None, ...]
    layout: str
    batch_size: int


def parse_request(body: bytes, header_length: str | None) -> ParsedRequest:
    """Split and parse the body; check the inputs' names and shapes, and each binary input's
    declared size against the bytes."""
    json_end = len(body) if header_length is None else _header_length(header_length, len(body))
    try:
        request = InferenceRequest.model_validate_json(body[:json_end])
    except ValidationError as error:
        raise InferenceProtocolError(_describe_validation(error)) from None
    layout, batch_size = _layout(request.inputs)
    binary = _binary_inputs(request.inputs, memoryview(body)[json_end:])
    return ParsedRequest(request, binary, layout, batch_size)


def _header_length(value: str, body_length: int) -> int:
    if not value.isdigit() or not 0 < int(value) <= body_length:
        raise InferenceProtocolError(
            f"{HEADER_LENGTH_HEADER} must be the length of the JSON header, between 1 and "
            f"the body's {body_length} bytes; got {value[:40]!r}"
        )
    return int(value)


def _binary_inputs(inputs: Sequence[RequestInput], raw: memoryview) -> tuple:
    chunks, offset = [], 0
    for tensor in inputs:
        size = (tensor.parameters or {}).get(BINARY_DATA_SIZE)
        if size is None:
            chunks.append(None)
            continue
        if type(size) is not int or size < 0 or offset + size > len(raw):
            raise InferenceProtocolError(
                f"input {tensor.name!r}: {BINARY_DATA_SIZE} {size!r} does not fit the "
                f"{len(raw) - offset} bytes left after the JSON header (send the header's "
                f"length in {HEADER_LENGTH_HEADER})"
            )
        if tensor.data is not None:
            raise InferenceProtocolError(
                f"input {tensor.name!r} has both data and {BINARY_DATA_SIZE}"
            )
        chunks.append(raw[offset : offset + size])
        offset += size
    if offset != len(raw):
        raise InferenceProtocolError(
            f"{len(raw) - offset} bytes after the JSON header belong to no input "
            f"(the inputs' {BINARY_DATA_SIZE} add up to {offset})"
        )
    return tuple(chunks)


def _describe_validation(error: ValidationError) -> str:
    parts = []
    for issue in error.errors()[:MAX_REPORTED_ERRORS]:
        where = ".".join(str(part) for part in issue["loc"]) or "body"
        parts.append(f"{where}: {issue['msg']}")
    return "Invalid inference request: " + "; ".join(parts)


def _layout(inputs: Sequence[RequestInput]) -> tuple[str, int]:
    """("matrix" | "columns", N) from the inputs' names and shapes."""
    names = [tensor.name for tensor in inputs]
    if len(inputs) == 1 and names[0] not in FEATURES:
        shape = inputs[0].shape
        if len(shape) != 2 or shape[1] != len(FEATURES) or shape[0] < 1:
            raise InferenceProtocolError(
                f"input {names[0]!r} must have shape [N, {len(FEATURES)}] (N >= 1, columns "
                f"{', '.join(FEATURES)}); got {shape}"
            )
        return "matrix", shape[0]
    if sorted(names) != sorted(FEATURES):
        raise InferenceProtocolError(
            f"expected one input of shape [N, {len(FEATURES)}], or one input of shape [N] per "
            f"field ({', '.join(FEATURES)}); got inputs {names}"
        )
    sizes = {tuple(tensor.shape) for tensor in inputs}
    if len(sizes) != 1 or not _is_column_shape(next(iter(sizes))):
        raise InferenceProtocolError(
            f"every field's input must have the same shape [N] (N >= 1); got "
            f"{ {tensor.name: tensor.shape for tensor in inputs} }"
        )
    return "columns", inputs[0].shape[0]


def _is_column_shape(shape: tuple[int, ...]) -> bool:
    return shape[0] >= 1 and (len(shape) == 1 or shape[1:] == (1,))


def decode_rows(parsed: ParsedRequest) -> np.ndarray:
    """The [N, 7] float64 array the inputs describe, columns in FEATURES order."""
    inputs, rows = parsed.request.inputs, parsed.batch_size
    tensors = {
        tensor.name: _decode(tensor, chunk)
        for tensor, chunk in zip(inputs, parsed.binary, strict=True)
    }
    if parsed.layout == "matrix":
        return tensors[inputs[0].name].reshape(rows, len(FEATURES))
    return np.column_stack([tensors[name].reshape(rows) for name in FEATURES])


def _decode(tensor: RequestInput, chunk: memoryview | None) -> np.ndarray:
    dtype = DATATYPES.get(tensor.datatype)
    if dtype is None:
        raise InferenceProtocolError(
            f"input {tensor.name!r}: datatype {tensor.datatype!r} is not supported; use one "
            f"of {', '.join(DATATYPES)}"
        )
    count = math.prod(tensor.shape)
    if chunk is not None:
        return _from_binary(tensor, dtype, chunk, count)
    if tensor.data is None:
        raise InferenceProtocolError(
            f"input {tensor.name!r} has no data (give data, or {BINARY_DATA_SIZE} and the bytes)"
        )
    return _from_json(tensor, dtype, count)


def _from_binary(
    tensor: RequestInput, dtype: np.dtype, chunk: memoryview, count: int
) -> np.ndarray:
    if len(chunk) != count * dtype.itemsize:
        raise InferenceProtocolError(
            f"input {tensor.name!r}: {BINARY_DATA_SIZE} is {len(chunk)} bytes, but shape "
            f"{tensor.shape} of {tensor.datatype} needs {count * dtype.itemsize}"
        )
    return _as_float64(np.frombuffer(chunk, dtype=dtype))


def _from_json(tensor: RequestInput, dtype: np.dtype, count: int) -> np.ndarray:
    try:
        values = np.asarray(tensor.data)
    except (ValueError, OverflowError):  # ragged nesting
        values = None
    if values is None or values.dtype.kind not in _NUMERIC_KINDS:
        raise InferenceProtocolError(
            f"input {tensor.name!r}: data must be numbers, flat or nested as the shape "
            f"{tensor.shape}"
        )
    if values.size != count or (values.ndim > 1 and list(values.shape) != tensor.shape):
        raise InferenceProtocolError(
            f"input {tensor.name!r}: data has shape {list(values.shape)}, but shape "
            f"{tensor.shape} needs {count} values (flat, or nested as the shape)"
        )
    values = values.reshape(-1).astype(np.float64)
    if dtype.kind in "iu":
        _check_integers(tensor, dtype, values)
    elif dtype.itemsize < 8:
        values = _as_float64(values.astype(dtype))
    return values


def _check_integers(tensor: RequestInput, dtype: np.dtype, values: np.ndarray) -> None:
    limits = np.iinfo(dtype)
    valid = (np.floor(values) == values) & (values >= limits.min) & (values <= limits.max)
    if not valid.all():
        index = int(np.argmin(valid))
        raise InferenceProtocolError(
            f"input {tensor.name!r}: element {index} ({values[index]!r}) is not a "
            f"{tensor.datatype} value"
        )


def _as_float64(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind != "f" or values.dtype.itemsize == 8:
        return values.astype(np.float64)
    if values.size <= _SMALL_TENSOR:  # NumPy prints each float as its shortest decimal
        return values.astype(str).astype(np.float64)
    return shortest_decimals(values)


def shortest_decimals(values: np.ndarray) -> np.ndarray:
    """Each float (32 or 16 bits) as the float64 nearest its shortest round-trip decimal.

    The same numbers as printing them, ~9x faster on large tensors: for 1..9 significant
    digits, round every value still pending and keep those that round back to themselves.
    """
    wide = values.astype(np.float64)
    pending = np.isfinite(wide) & (wide != 0)
    exponents = np.floor(np.log10(np.abs(np.where(pending, wide, 1.0))))
    result = wide
    for digits in range(1, 10):
        shift = digits - 1 - exponents
        scale = 10.0 ** np.abs(shift)
        # Dividing by, or multiplying an integer by, an exact power of ten rounds correctly.
        candidate = np.where(
            shift >= 0, np.round(wide * scale) / scale, np.round(wide / scale) * scale
        )
        found = pending & (candidate.astype(values.dtype) == values)
        result = np.where(found, candidate, result)
        pending &= ~found
        if not pending.any():
            break
    return result


# --- Response --------------------------------------------------------------------------


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
            raise InferenceProtocolError(
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
