"""The contract's ranges and codes checked on an [N, 7] float64 array, column by column.

TODO(lead): app.validation.check_rows (SERVING_API.md) replaces this module when it lands;
until then it is the same rules /classify applies: finite, inside the field's closed range,
integral for integer fields, one of the codes for categorical fields.
"""

from dataclasses import dataclass

import numpy as np

from penguin_contract import FIELDS
from penguin_contract import Field as ContractField

MAX_REPORTED_ISSUES = 5


@dataclass(frozen=True, slots=True)
class RowIssue:
    field: str
    row: int
    message: str
    allowed: str


def check_rows(rows: np.ndarray) -> list[RowIssue]:
    """Every field's first invalid row (rows are in FEATURES order); empty when all are valid."""
    issues = []
    for index, spec in enumerate(FIELDS):
        issue = _first_issue(spec, rows[:, index])
        if issue is not None:
            issues.append(issue)
    return issues


def _first_issue(spec: ContractField, column: np.ndarray) -> RowIssue | None:
    finite = np.isfinite(column)
    with np.errstate(invalid="ignore"):
        if spec.codes is not None:
            valid = np.isin(column, list(spec.codes))
        else:
            valid = finite & (column >= spec.minimum) & (column <= spec.maximum)
        if spec.kind == "integer":
            valid &= np.floor(column) == column
    if valid.all():
        return None
    row = int(np.argmin(valid))
    value = column[row]
    if not finite[row]:
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
