"""The protocol's JSON objects (KServe "Open Inference Protocol", REST), as pydantic models.

Parameters are the spec's $parameters: string, number or boolean values by name. Requests may
carry fields this server does not use (tritonclient and kserve send "model_name"); they are
ignored, as are parameters it does not know.
"""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

ParameterValue = str | int | float | bool
Parameters = dict[str, ParameterValue]
# Triton's binary tensor data extension (see app.v2.tensors).
BINARY_DATA_SIZE = "binary_data_size"
BINARY_DATA = "binary_data"
BINARY_DATA_OUTPUT = "binary_data_output"


class RequestInput(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str
    shape: list[int] = Field(min_length=1)
    datatype: str
    parameters: Parameters | None = None
    # Row-major, flat or nested; absent when the tensor comes as binary data after the JSON.
    data: Any = None


class RequestOutput(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str
    parameters: Parameters | None = None


class InferenceRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str | None = None
    parameters: Parameters | None = None
    inputs: list[RequestInput] = Field(min_length=1)
    outputs: list[RequestOutput] | None = None


class MetadataTensor(BaseModel):
    name: str
    datatype: str
    shape: list[int] = Field(description="-1 for a variable dimension (the batch)")


class ModelMetadata(BaseModel):
    name: str
    versions: list[str] = Field(description="The served file's sha256")
    platform: str = Field(description="onnxruntime_onnx or sklearn: what computes the answers")
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor]


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class ServerLive(BaseModel):
    live: bool


class ServerReady(BaseModel):
    ready: bool


class ModelReady(BaseModel):
    name: str
    ready: bool


class ErrorBody(BaseModel):
    error: str
