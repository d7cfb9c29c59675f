"""predictions.log lines and prediction JSON, encoded column by column.

A 1000-row batch gets 1000 log lines and 1000 predictions; encoding them value by value (a dict
per row through json, or ``repr`` per float) took longer than the forest's predictions. Here
each numeric column is encoded by one ``orjson.dumps`` of the NumPy column (shortest round-trip
text, like ``repr``) and split into its values; every row is then one bytes ``%`` of a template.
Each row's result is encoded once and shared by its log line and its prediction in the response.

orjson writes NaN and infinity as null, so only finite numbers may reach it: the request schema
refuses NaN and infinity, and probabilities are checked here.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import orjson

from app.errors import ModelUnavailableError
from penguin_contract import FIELDS, SPECIES

_SPECIES_JSON = {code: orjson.dumps(name) for code, name in SPECIES.items()}
_INPUT_TEMPLATE = b",".join(b'"%s":%%s' % spec.name.encode() for spec in FIELDS)
_INTEGER_COLUMNS = tuple(spec.kind == "integer" for spec in FIELDS)


def number_texts(column: np.ndarray) -> list[bytes]:
    """The JSON text of every number in a 1-D array (finite values only)."""
    encoded = orjson.dumps(np.ascontiguousarray(column), option=orjson.OPT_SERIALIZE_NUMPY)
    return encoded[1:-1].split(b",")


def _literal(text: bytes) -> bytes:
    """``text`` made safe to embed in a ``%`` template."""
    return text.replace(b"%", b"%%")


@dataclass(frozen=True, slots=True)
class EncodedPredictions:
    """A request's predictions: species codes and, per row, its result as a JSON fragment."""

    model: str
    species_ids: list[int]
    # '"species_id":1,"species_name":"Adelie","probabilities":{...}' (or null), per row
    results: list[bytes]

    def prediction_json(self, index: int = 0) -> bytes:
        """One prediction: {"model", "species_id", "species_name", "probabilities"}."""
        return b'{"model":%s,%s}' % (orjson.dumps(self.model), self.results[index])

    def batch_json(self, request_id: str) -> bytes:
        """{"model", "request_id", "predictions": [prediction, ...]} in row order."""
        model = orjson.dumps(self.model)
        opening = b'{"model":' + model + b","
        predictions = b"[" + opening + (b"}," + opening).join(self.results) + b"}]"
        return b'{"model":%s,"request_id":%s,"predictions":%s}' % (
            model,
            orjson.dumps(request_id),
            predictions,
        )


def encode_predictions(
    model: str,
    labels: np.ndarray,
    probabilities: np.ndarray | None,
    class_names: Sequence[str],
) -> EncodedPredictions:
    species_ids = np.asarray(labels).astype(np.int64).tolist()
    names = [_SPECIES_JSON[code] for code in species_ids]
    if probabilities is None:
        results = [
            b'"species_id":%d,"species_name":%s,"probabilities":null' % pair
            for pair in zip(species_ids, names, strict=True)
        ]
        return EncodedPredictions(model, species_ids, results)
    if not np.isfinite(probabilities).all():
        raise ModelUnavailableError(model, "it returned probabilities that are not finite")
    template = (
        b'"species_id":%d,"species_name":%s,"probabilities":{'
        + b",".join(_literal(orjson.dumps(name)) + b":%s" for name in class_names)
        + b"}"
    )
    columns = [number_texts(probabilities[:, k]) for k in range(probabilities.shape[1])]
    results = [template % values for values in zip(species_ids, names, *columns, strict=True)]
    return EncodedPredictions(model, species_ids, results)


def log_lines(
    *,
    timestamp: str,
    request_id: str,
    model_sha256: str,
    rows: np.ndarray,
    predictions: EncodedPredictions,
    latency_ms: float,
    batch: bool,
) -> bytes:
    """One JSON line per row: timestamp, request_id, model, model_sha256, input, result,
    latency_ms (+ batch_index and batch_size for a batch). Rows are in FIELDS order."""
    strings = (timestamp, request_id, predictions.model, model_sha256)
    head = b'{"timestamp":%s,"request_id":%s,"model":%s,"model_sha256":%s,"input":{' % tuple(
        _literal(orjson.dumps(text)) for text in strings
    )
    template = (
        head
        + _INPUT_TEMPLATE
        + b'},"result":{%s},"latency_ms":'
        + _literal(orjson.dumps(latency_ms))
    )
    inputs = [
        number_texts(rows[:, index].astype(np.int64) if integer else rows[:, index])
        for index, integer in enumerate(_INTEGER_COLUMNS)
    ]
    results = predictions.results
    if batch:
        template += b',"batch_index":%d,"batch_size":' + b"%d}\n" % len(results)
        lines = [
            template % (*values, index)
            for index, values in enumerate(zip(*inputs, results, strict=True))
        ]
    else:
        template += b"}\n"
        lines = [template % values for values in zip(*inputs, results, strict=True)]
    return b"".join(lines)
