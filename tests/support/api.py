"""Request bodies and helpers for tests that talk to the API."""

import json
from pathlib import Path
from typing import Any

from penguin_contract import FEATURES

# The original project's curl example: a male Adelie from Torgersen (row id 1 of the data).
ADELIE = {
    "island": 1,
    "bill_length_mm": 39.1,
    "bill_depth_mm": 18.7,
    "flipper_length_mm": 181,
    "body_mass_g": 3750,
    "sex": 1,
    "year": 2007,
}


def body_from_row(row: Any) -> dict[str, Any]:
    """A request body from a data row (pandas Series or dict) with the contract's columns."""
    return {
        name: int(row[name]) if name in ("island", "sex", "year") else float(row[name])
        for name in FEATURES
    }


def read_log(path: Path) -> list[dict[str, Any]]:
    """Every line of predictions.log parsed as JSON (fails on a torn or invalid line)."""
    if not path.exists():
        return []
    text = path.read_text()
    assert text == "" or text.endswith("\n"), "the log ends with a partial line"
    return [json.loads(line) for line in text.splitlines()]
