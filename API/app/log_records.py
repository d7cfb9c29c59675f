"""Prediction log lines: a single prediction's line from a dict, a batch's column by column.

A 1000-row batch gets 1000 log lines; encoding them value by value (a dict per row, even
through orjson) took 2.4 ms here, longer than most predictions. So each numeric column is
encoded by one ``orjson.dumps`` of the NumPy column (shortest round-trip text, like ``repr``)
and split into its values; every line is then one bytes ``%`` of a template (0.8 ms). For a
single row that machinery costs 10 us and one ``orjson.dumps`` of a dict 3 us, so a single
prediction takes the dict; tests/api/test_log_records.py checks both give the same bytes.

orjson writes NaN and infinity as null, so only finite numbers may reach it: the request
schema refuses NaN and infinity, and the service refuses non-finite probabilities.
"""

import numpy as np
import orjson

from penguin_contract import FIELDS, SPECIES

_SPECIES_JSON = {code: orjson.dumps(name) for code, name in SPECIES.items()}
_SPECIES_NAMES = tuple(SPECIES.values())
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
    if not batch and len(rows) == 1:
        line = {
            "timestamp": timestamp,
            "request_id": request_id,
            "model": model,
            "model_sha256": model_sha256,
            "runtime": runtime,
            "input": _input(rows[0]),
            "result": _result(int(labels[0]), probabilities),
            "latency_ms": latency_ms,
        }
        return orjson.dumps(line) + b"\n"
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


def _input(row: np.ndarray) -> dict[str, int | float]:
    return {
        spec.name: int(value) if integer else value
        for spec, integer, value in zip(FIELDS, _INTEGER_COLUMNS, row.tolist(), strict=True)
    }


def _result(code: int, probabilities: np.ndarray | None) -> dict:
    return {
        "species_id": code,
        "species_name": SPECIES[code],
        "probabilities": None
        if probabilities is None
        else dict(zip(_SPECIES_NAMES, probabilities[0].tolist(), strict=True)),
    }
