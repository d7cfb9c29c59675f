"""The contract's rules checked on an [N, 7] float64 array, every field at once: finite,
inside the field's closed range, integral for integer fields, one of the codes for
categorical fields. The rules /classify's schema applies value by value, for NumPy rows
(the columnar batch and the Open Inference Protocol's tensors)."""

from dataclasses import dataclass

import numpy as np

from penguin_contract import FIELDS
from penguin_contract import Field as ContractField

MAX_REPORTED_ISSUES = 5
_MINIMA = np.array([spec.minimum for spec in FIELDS], dtype=np.float64)
_MAXIMA = np.array([spec.maximum for spec in FIELDS], dtype=np.float64)
_INTEGER = np.array([spec.kind == "integer" for spec in FIELDS])
_CODES_WITH_GAPS = tuple(
    index
    for index, spec in enumerate(FIELDS)
    if spec.codes is not None
    and set(spec.codes) != set(range(int(spec.minimum), int(spec.maximum) + 1))
)

_FEW_ROWS = 4
# Per field: minimum, maximum, integral, its codes (empty when it has none).
_RULES = tuple(
    (spec.minimum, spec.maximum, spec.kind == "integer", frozenset(spec.codes or ()))
    for spec in FIELDS
)


@dataclass(frozen=True, slots=True)
class RowIssue:
    field: str
    row: int
    message: str
    allowed: str


def check_rows(rows: np.ndarray) -> list[RowIssue]:
    """Every field's first invalid row (rows are in FEATURES order); empty when all are valid.

    All fields at once, with NumPy; a few rows are first checked in plain Python, which for
    them is several times cheaper than NumPy's per-call cost (and equivalent to it).
    """
    if len(rows) <= _FEW_ROWS and _all_valid(rows.tolist()):
        return []
    # The ranges are finite, so NaN and infinities fail them too.
    valid = (rows >= _MINIMA) & (rows <= _MAXIMA) & (~_INTEGER | (np.floor(rows) == rows))
    for index in _CODES_WITH_GAPS:  # codes that are not every integer of their range
        valid[:, index] &= np.isin(rows[:, index], list(FIELDS[index].codes or ()))
    if valid.all():
        return []
    return [
        _issue(spec, rows[:, index], int(np.argmin(valid[:, index])))
        for index, spec in enumerate(FIELDS)
        if not valid[:, index].all()
    ]


def _all_valid(rows: list[list[float]]) -> bool:
    # NaN fails every comparison and the ranges are finite, so both are refused here too.
    for row in rows:
        for value, (low, high, integer, codes) in zip(row, _RULES, strict=True):
            if not low <= value <= high or (integer and not value.is_integer()):
                return False
            if codes and value not in codes:
                return False
    return True


def _issue(spec: ContractField, column: np.ndarray, row: int) -> RowIssue:
    value = column[row]
    if not np.isfinite(value):
        problem = f"{value} is not a finite number"
    elif spec.codes is not None:
        problem = f"{value:g} is not one of the codes"
    elif spec.kind == "integer" and np.floor(value) != value:
        problem = f"{value!r} is not an integer"
    else:
        problem = f"{value:g} is out of range"
    return RowIssue(spec.name, row, problem, spec.allowed())


def describe(issues: list[RowIssue]) -> str:
    """One message naming each field and row at fault (the first few)."""
    parts = [
        f"{issue.field} at row {issue.row}: {issue.message} (allowed: {issue.allowed})"
        for issue in issues[:MAX_REPORTED_ISSUES]
    ]
    more = len(issues) - MAX_REPORTED_ISSUES
    suffix = f"; and {more} more" if more > 0 else ""
    return "Invalid input: " + "; ".join(parts) + suffix
