"""predictions.log lines, built fast: the request's constant part once, each row by a template.

A 1000-row batch gets 1000 lines; building them with json.dumps took longer than the forest's
predictions. The templates produce the same JSON: ``repr`` of a finite Python float is valid
JSON, and every string embedded here is JSON-encoded once per request.
"""

import json
from collections.abc import Sequence

from penguin_contract import FIELDS, SPECIES

_INPUT_TEMPLATE = ",".join(
    f'"{spec.name}":%d' if spec.kind == "integer" else f'"{spec.name}":%r' for spec in FIELDS
)


def log_lines(
    *,
    timestamp: str,
    request_id: str,
    model: str,
    model_sha256: str,
    rows: Sequence[Sequence[float]],
    species_ids: Sequence[int],
    probabilities: Sequence[Sequence[float]] | None,
    class_names: Sequence[str],
    latency_ms: float,
    batch: bool,
) -> bytes:
    """One JSON line per row: timestamp, request_id, model, model_sha256, input, result,
    latency_ms (+ batch_index and batch_size for a batch). Rows are in FIELDS order."""
    head = (
        f'{{"timestamp":{json.dumps(timestamp)},"request_id":{json.dumps(request_id)},'
        f'"model":{json.dumps(model)},"model_sha256":{json.dumps(model_sha256)},"input":{{'
    )
    if probabilities is None:
        result = '},"result":{"species_id":%d,"species_name":%s,"probabilities":null}'
    else:
        result = (
            '},"result":{"species_id":%d,"species_name":%s,"probabilities":{'
            + ",".join(f"{json.dumps(name)}:%r" for name in class_names)
            + "}}"
        )
    tail = f',"latency_ms":{latency_ms!r}'
    template = head + _INPUT_TEMPLATE + result + tail
    names = {code: json.dumps(name) for code, name in SPECIES.items()}
    if batch:
        template += ',"batch_index":%d,"batch_size":' + str(len(rows)) + "}\n"
        if probabilities is None:
            lines = [
                template % (*row, species, names[species], index)
                for index, (row, species) in enumerate(zip(rows, species_ids, strict=True))
            ]
        else:
            lines = [
                template % (*row, species, names[species], *proba, index)
                for index, (row, species, proba) in enumerate(
                    zip(rows, species_ids, probabilities, strict=True)
                )
            ]
    else:
        template += "}\n"
        if probabilities is None:
            lines = [
                template % (*row, species, names[species])
                for row, species in zip(rows, species_ids, strict=True)
            ]
        else:
            lines = [
                template % (*row, species, names[species], *proba)
                for row, species, proba in zip(rows, species_ids, probabilities, strict=True)
            ]
    return "".join(lines).encode()
