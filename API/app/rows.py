"""Many rows at once: instances, columns and v2 tensors become one float64 [N, 7] array in
FEATURES order, checked once by ``check_rows``. A single row is validated by its pydantic
model (app.schemas): the same contract's rules, and these issues mirror pydantic's."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.errors import MAX_LISTED_ISSUES, InvalidRowsError
from penguin_contract import FEATURES, FIELDS, code_for
from penguin_contract import Field as ContractField

_MINIMA = np.array([spec.minimum for spec in FIELDS])
_MAXIMA = np.array([spec.maximum for spec in FIELDS])
_INTEGER = np.array([spec.kind == "integer" for spec in FIELDS])
_NUMBERS = frozenset({int, float})  # bool is not int here: a boolean is no measurement
_MISSING = object()
_TYPE_ERRORS = {
    "integer": ("int_type", "Input should be a valid integer"),
    "number": ("float_type", "Input should be a valid number"),
}
# An issue's location in the body, from its (row, field name).
Locate = Callable[[int, str], tuple]


@dataclass(frozen=True, slots=True)
class RowIssue:
    row: int
    field: str
    kind: str
    message: str
    value: Any = _MISSING

    def as_error(self, locate: Locate) -> dict[str, Any]:
        """The issue as pydantic reports one, so that one formatter says them all."""
        error = {"loc": locate(self.row, self.field), "type": self.kind, "msg": self.message}
        return error if self.value is _MISSING else {**error, "input": self.value}

    def describe(self) -> str:
        spec = next(spec for spec in FIELDS if spec.name == self.field)
        return f"{self.field} at row {self.row}: {self.message} (allowed: {spec.allowed()})"


@dataclass
class RowIssues:
    """The first issues found (at most ``limit``) and how many there are in all."""

    listed: list[RowIssue] = field(default_factory=list)
    total: int = 0
    limit: int = MAX_LISTED_ISSUES

    def add(self, issue: RowIssue) -> None:
        self.total += 1
        if len(self.listed) < self.limit:
            self.listed.append(issue)

    def describe(self, most: int) -> str:
        """One message naming the field, row and allowed values of the first ``most`` issues."""
        described = "; ".join(issue.describe() for issue in self.listed[:most])
        more = f"; and {self.total - most} more" if self.total > most else ""
        return f"Invalid input: {described}{more}"

    def raise_if_any(self, locate: Locate) -> None:
        if self.total:
            raise InvalidRowsError([issue.as_error(locate) for issue in self.listed], self.total)


def check_rows(rows: np.ndarray) -> RowIssues:
    """The values of ``rows`` that break the contract: finite, inside their field's closed
    range, integral for integer fields, one of the codes for categorical fields."""
    # NaN and infinities fail the (finite) ranges too.
    valid = (rows >= _MINIMA) & (rows <= _MAXIMA) & (~_INTEGER | (np.floor(rows) == rows))
    for index, spec in enumerate(FIELDS):
        if spec.codes is not None:
            valid[:, index] &= np.isin(rows[:, index], list(spec.codes))
    issues = RowIssues(total=int(np.count_nonzero(~valid)))
    for row, column in np.argwhere(~valid)[: issues.limit].tolist():
        issues.listed.append(_issue(row, FIELDS[column], float(rows[row, column])))
    return issues


def _issue(row: int, spec: ContractField, value: float) -> RowIssue:
    if not np.isfinite(value):
        return RowIssue(row, spec.name, "finite_number", "Input should be a finite number", value)
    if spec.kind == "integer" and not value.is_integer():
        return RowIssue(row, spec.name, "int_from_float", "Input should be a valid integer", value)
    if value < spec.minimum:
        message = f"Input should be greater than or equal to {spec.minimum:g}"
        return RowIssue(row, spec.name, "greater_than_equal", message, value)
    if value > spec.maximum:
        message = f"Input should be less than or equal to {spec.maximum:g}"
        return RowIssue(row, spec.name, "less_than_equal", message, value)
    return RowIssue(row, spec.name, "enum", "Input should be one of the codes", value)


def rows_from_instances(instances: Sequence[Any]) -> np.ndarray:
    """[{field: value, ...}, ...] -> checked rows; InvalidRowsError naming the issues."""
    for index, instance in enumerate(instances):
        if not isinstance(instance, dict):
            message = f"Input should be an object with the fields {', '.join(FEATURES)}"
            error = {"loc": ("body", "instances", index), "type": "dict_type", "msg": message}
            raise InvalidRowsError([error], 1)
    columns = [[instance.get(name, _MISSING) for instance in instances] for name in FEATURES]
    return _checked_rows(columns, lambda row, field: ("body", "instances", row, field))


def rows_from_columns(columns: dict[str, list[Any]]) -> np.ndarray:
    """{field: [values], ...} (equal lengths) -> checked rows; InvalidRowsError."""
    missing = [name for name in FEATURES if name not in columns]
    if missing:
        locations = [("body", "columns", name) for name in missing]
        errors = [{"loc": loc, "type": "missing", "msg": "Field required"} for loc in locations]
        raise InvalidRowsError(errors, len(errors))
    lengths = {name: len(columns[name]) for name in FEATURES}
    if len(set(lengths.values())) > 1:
        message = f"every column must have the same length; got {lengths}"
        error = {"loc": ("body", "columns"), "type": "value_error", "msg": message}
        raise InvalidRowsError([error], 1)
    values = [columns[name] for name in FEATURES]
    return _checked_rows(values, lambda row, field: ("body", "columns", field, row))


def _checked_rows(columns: list[list[Any]], locate: Locate) -> np.ndarray:
    """The values, one list per field, as checked rows (types first, then the rules)."""
    issues = RowIssues()
    rows = np.column_stack(
        [_column(spec, values, issues) for spec, values in zip(FIELDS, columns, strict=True)]
    )
    issues.raise_if_any(locate)
    check_rows(rows).raise_if_any(locate)
    return rows


def _column(spec: ContractField, values: list[Any], issues: RowIssues) -> np.ndarray:
    if set(map(type, values)) <= _NUMBERS:
        try:
            return np.array(values, dtype=np.float64)
        except OverflowError:
            pass  # an integer too large for a float: said value by value below
    return np.array([_number(spec, value, row, issues) for row, value in enumerate(values)])


def _number(spec: ContractField, value: Any, row: int, issues: RowIssues) -> float:
    """``value`` as a float (a categorical field's name as its code); else its issue."""
    kind, message = "missing", "Field required"
    if type(value) in _NUMBERS:
        try:
            return float(value)
        except OverflowError:
            kind, message = "finite_number", "Input should be a finite number"
    elif isinstance(value, str) and spec.codes is not None:
        try:
            return float(code_for(spec.codes, value))
        except ValueError as error:  # a name that is none of the codes'
            kind, message = "value_error", str(error)
    elif value is not _MISSING:
        kind, message = _TYPE_ERRORS[spec.kind]
    issues.add(RowIssue(row, spec.name, kind, message, value))
    return 0.0
