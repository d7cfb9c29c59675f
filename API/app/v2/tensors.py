"""Request tensors to an [N, 7] float64 array in FEATURES order.

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
from pydantic import ValidationError

from app.errors import InferenceRequestError
from app.v2.schemas import (
    BINARY_DATA_SIZE,
    InferenceRequest,
    RequestInput,
)
from penguin_contract import FEATURES

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
MAX_REPORTED_ERRORS = 5
_NUMERIC_KINDS = frozenset("iuf")


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
        raise InferenceRequestError(_describe_validation(error)) from None
    layout, batch_size = _layout(request.inputs)
    binary = _binary_inputs(request.inputs, memoryview(body)[json_end:])
    return ParsedRequest(request, binary, layout, batch_size)


def _header_length(value: str, body_length: int) -> int:
    if not value.isdigit() or not 0 < int(value) <= body_length:
        raise InferenceRequestError(
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
            raise InferenceRequestError(
                f"input {tensor.name!r}: {BINARY_DATA_SIZE} {size!r} does not fit the "
                f"{len(raw) - offset} bytes left after the JSON header (send the header's "
                f"length in {HEADER_LENGTH_HEADER})"
            )
        if tensor.data is not None:
            raise InferenceRequestError(
                f"input {tensor.name!r} has both data and {BINARY_DATA_SIZE}"
            )
        chunks.append(raw[offset : offset + size])
        offset += size
    if offset != len(raw):
        raise InferenceRequestError(
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
            raise InferenceRequestError(
                f"input {names[0]!r} must have shape [N, {len(FEATURES)}] (N >= 1, columns "
                f"{', '.join(FEATURES)}); got {shape}"
            )
        return "matrix", shape[0]
    if sorted(names) != sorted(FEATURES):
        raise InferenceRequestError(
            f"expected one input of shape [N, {len(FEATURES)}], or one input of shape [N] per "
            f"field ({', '.join(FEATURES)}); got inputs {names}"
        )
    sizes = {tuple(tensor.shape) for tensor in inputs}
    if len(sizes) != 1 or not _is_column_shape(next(iter(sizes))):
        raise InferenceRequestError(
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
        raise InferenceRequestError(
            f"input {tensor.name!r}: datatype {tensor.datatype!r} is not supported; use one "
            f"of {', '.join(DATATYPES)}"
        )
    count = math.prod(tensor.shape)
    if chunk is not None:
        return _from_binary(tensor, dtype, chunk, count)
    if tensor.data is None:
        raise InferenceRequestError(
            f"input {tensor.name!r} has no data (give data, or {BINARY_DATA_SIZE} and the bytes)"
        )
    return _from_json(tensor, dtype, count)


def _from_binary(
    tensor: RequestInput, dtype: np.dtype, chunk: memoryview, count: int
) -> np.ndarray:
    if len(chunk) != count * dtype.itemsize:
        raise InferenceRequestError(
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
        raise InferenceRequestError(
            f"input {tensor.name!r}: data must be numbers, flat or nested as the shape "
            f"{tensor.shape}"
        )
    if values.size != count or (values.ndim > 1 and list(values.shape) != tensor.shape):
        raise InferenceRequestError(
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
        raise InferenceRequestError(
            f"input {tensor.name!r}: element {index} ({values[index]!r}) is not a "
            f"{tensor.datatype} value"
        )


def _as_float64(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind != "f" or values.dtype.itemsize == 8:
        return values.astype(np.float64)
    return values.astype(str).astype(np.float64)  # each float as its shortest decimal
