"""Request tensors to the [N, 7] float64 rows they hold, columns in FEATURES order.

One [N, 7] tensor (named anything but a field), or one [N] tensor per field, named after it;
as JSON ("data", row-major, flat or nested) or, with Triton's binary tensor data extension, as
little-endian bytes after the JSON header (Inference-Header-Content-Length; "binary_data_size").
An FP32 or FP16 value is read as the shortest decimal that rounds to it (39.1, not
39.09999847), the number its sender printed, so it gets /classify's answer.
"""

import math
import re
from typing import Any

import numpy as np
from pydantic import BaseModel, Field, ValidationError

from app.errors import InferenceRequestError
from penguin_contract import FEATURES

HEADER_LENGTH = "Inference-Header-Content-Length"
# The datatypes accepted for features: NumPy's types (FP is float), little-endian.
_NAMES = ("FP64", "FP32", "FP16", "INT64", "INT32", "INT16", "INT8")
DATATYPES = {
    name: np.dtype(name.lower().replace("fp", "float")).newbyteorder("<")
    for name in (*_NAMES, "UINT64", "UINT32", "UINT16", "UINT8")
}

Parameters = dict[str, str | int | float | bool]


class RequestInput(BaseModel):
    name: str
    shape: list[int] = Field(min_length=1)
    datatype: str
    parameters: Parameters | None = None
    # Numbers, row-major, flat or nested; a binary input's bytes once parse_request reads them.
    data: Any = None


class RequestOutput(BaseModel):
    name: str
    parameters: Parameters | None = None


class InferenceRequest(BaseModel):
    id: str | None = None
    parameters: Parameters | None = None
    inputs: list[RequestInput] = Field(min_length=1)
    outputs: list[RequestOutput] | None = None


def parse_request(body: bytes, header_length: str | None) -> InferenceRequest:
    """The JSON header, with each binary input's bytes as its data."""
    json_length = len(body)
    if header_length is not None:
        json_length = int(header_length) if re.fullmatch(r"[0-9]{1,15}", header_length) else 0
        if not 0 < json_length <= len(body):
            raise InferenceRequestError(
                f"{HEADER_LENGTH} must be the length of the JSON header, between 1 and the "
                f"body's {len(body)} bytes; got {header_length[:40]!r}"
            )
    try:
        request = InferenceRequest.model_validate_json(body[:json_length])
    except ValidationError as error:
        issues = [
            f"{'.'.join(map(str, issue['loc'])) or 'body'}: {issue['msg']}"
            for issue in error.errors()[:5]
        ]
        raise InferenceRequestError("Invalid inference request: " + "; ".join(issues)) from None
    _read_binary_data(request.inputs, memoryview(body)[json_length:])
    return request


def _read_binary_data(inputs: list[RequestInput], raw: memoryview) -> None:
    offset = 0
    for tensor in inputs:
        size = (tensor.parameters or {}).get("binary_data_size")
        if size is None:
            continue
        if type(size) is not int or size < 0 or offset + size > len(raw):
            raise InferenceRequestError(
                f"input {tensor.name!r}: binary_data_size {size!r} does not fit the "
                f"{len(raw) - offset} bytes left after the JSON header (send the header's "
                f"length in {HEADER_LENGTH})"
            )
        if tensor.data is not None:
            raise InferenceRequestError(f"input {tensor.name!r} has both data and binary_data_size")
        tensor.data = raw[offset : offset + size]
        offset += size
    if offset != len(raw):
        raise InferenceRequestError(
            f"{len(raw) - offset} bytes after the JSON header belong to no input "
            f"(the inputs' binary_data_size add up to {offset})"
        )


def batch_size(inputs: list[RequestInput]) -> int:
    """N, once the shapes show one [N, 7] tensor or one [N] tensor per field."""
    names = [tensor.name for tensor in inputs]
    if len(inputs) == 1 and names[0] not in FEATURES:
        shape = inputs[0].shape
        if len(shape) != 2 or shape[1] != len(FEATURES) or shape[0] < 1:
            raise InferenceRequestError(
                f"input {names[0]!r} must have shape [N, {len(FEATURES)}] (N >= 1, columns "
                f"{', '.join(FEATURES)}); got {shape}"
            )
        return shape[0]
    if sorted(names) != sorted(FEATURES):
        raise InferenceRequestError(
            f"expected one input of shape [N, {len(FEATURES)}], or one input of shape [N] per "
            f"field ({', '.join(FEATURES)}); got inputs {names}"
        )
    n = inputs[0].shape[0]
    same_shape = all(tensor.shape == inputs[0].shape for tensor in inputs)
    if n < 1 or inputs[0].shape not in ([n], [n, 1]) or not same_shape:
        raise InferenceRequestError(
            f"every field's input must have the same shape [N] (N >= 1); got "
            f"{ {tensor.name: tensor.shape for tensor in inputs} }"
        )
    return n


def decode_rows(inputs: list[RequestInput]) -> np.ndarray:
    """The rows of inputs that batch_size accepted."""
    n = inputs[0].shape[0]
    if len(inputs) == 1:
        return _values(inputs[0]).reshape(n, len(FEATURES))
    columns = {tensor.name: _values(tensor) for tensor in inputs}
    return np.column_stack([columns[name] for name in FEATURES])


def _values(tensor: RequestInput) -> np.ndarray:
    """The tensor's elements, flat, as float64."""
    if tensor.datatype not in DATATYPES:
        raise InferenceRequestError(
            f"input {tensor.name!r}: datatype {tensor.datatype!r} is not supported; use one "
            f"of {', '.join(DATATYPES)}"
        )
    dtype, count = DATATYPES[tensor.datatype], math.prod(tensor.shape)
    if isinstance(tensor.data, memoryview):
        if len(tensor.data) != count * dtype.itemsize:
            raise InferenceRequestError(
                f"input {tensor.name!r}: binary_data_size is {len(tensor.data)} bytes, but "
                f"shape {tensor.shape} of {tensor.datatype} needs {count * dtype.itemsize}"
            )
        values = np.frombuffer(tensor.data, dtype)
    else:
        values = _json_values(tensor, dtype, count)
    if dtype.kind == "f" and dtype.itemsize < 8:
        return values.astype(str).astype(np.float64)  # each as its shortest decimal
    return values.astype(np.float64)


def _json_values(tensor: RequestInput, dtype: np.dtype, count: int) -> np.ndarray:
    """The JSON data as numbers of the datatype (integers are kept as float64)."""
    if tensor.data is None:
        raise InferenceRequestError(
            f"input {tensor.name!r} has no data (give data, or binary_data_size and the bytes)"
        )
    try:
        values = np.asarray(tensor.data)
    except (ValueError, OverflowError):  # ragged nesting
        values = None
    if values is None or values.dtype.kind not in "iuf":
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
    if dtype.kind == "f":
        return values.astype(dtype)
    limits = np.iinfo(dtype)
    valid = (np.floor(values) == values) & (values >= limits.min) & (values <= limits.max)
    if not valid.all():
        index = int(np.argmin(valid))
        raise InferenceRequestError(
            f"input {tensor.name!r}: element {index} ({values[index]}) is not a "
            f"{tensor.datatype} value"
        )
    return values
