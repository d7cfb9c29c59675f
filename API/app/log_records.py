"""Prediction log lines, encoded column by column.

A 1000-row batch gets 1000 log lines; encoding them value by value (a dict per row through
json, or ``repr`` per float) took longer than the predictions. Here each numeric column is
encoded by one ``orjson.dumps`` of the NumPy column (shortest round-trip text, like ``repr``)
and split into its values; every line is then one bytes ``%`` of a template.

orjson writes NaN and infinity as null, so only finite numbers may reach it: the request
schema refuses NaN and infinity, and the service refuses non-finite probabilities.
"""

import numpy as np
import orjson

from penguin_contract import FIELDS, SPECIES

_SPECIES_JSON = {code: orjson.dumps(name) for code, name in SPECIES.items()}
_INPUT_TEMPLATE = b",".join(b'"%s":%%s' % spec.name.encode() for spec in FIELDS)
_INTEGER_COLUMNS = tuple(spec.kind == "integer" for spec in FIELDS)
_PROBABILITIES_TEMPLATE = (
    b'"probabilities":{' + b",".join(b"%s:%%s" % name for name in _SPECIES_JSON.values()) + b"}"
)


def number_texts(column: np.ndarray) -> list[bytes]:
    """The JSON text of every number in a 1-D array (finite values only)."""
    encoded = orjson.dumps(np.ascontiguousarray(column), option=orjson.OPT_SERIALIZE_NUMPY)
    return encoded[1:-1].split(b",")


def _literal(text: bytes) -> bytes:
    """``text`` made safe to embed in a ``%`` template."""
    return text.replace(b"%", b"%%")


def _results(labels: np.ndarray, probabilities: np.ndarray | None) -> list[bytes]:
    """'"species_id":1,"species_name":"Adelie","probabilities":{...}' (or null), per row."""
    species_ids = labels.tolist()
    heads = [
        b'"species_id":%d,"species_name":%s,' % (code, _SPECIES_JSON[code]) for code in species_ids
    ]
    if probabilities is None:
        return [head + b'"probabilities":null' for head in heads]
    columns = [number_texts(probabilities[:, k]) for k in range(probabilities.shape[1])]
    return [
        head + _PROBABILITIES_TEMPLATE % values
        for head, values in zip(heads, zip(*columns, strict=True), strict=True)
    ]


def log_lines(
    *,
    timestamp: str,
    request_id: str,
    model: str,
    model_sha256: str,
    runtime: str,
    rows: np.ndarray,
    labels: np.ndarray,
    probabilities: np.ndarray | None,
    latency_ms: float,
    batch: bool,
) -> bytes:
    """One JSON line per row: timestamp, request_id, model, model_sha256, runtime, input
    (FIELDS order), result, latency_ms (+ batch_index and batch_size for a batch)."""
    strings = (timestamp, request_id, model, model_sha256, runtime)
    head = (
        b'{"timestamp":%s,"request_id":%s,"model":%s,"model_sha256":%s,"runtime":%s,"input":{'
        % tuple(_literal(orjson.dumps(text)) for text in strings)
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
    results = _results(labels, probabilities)
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
