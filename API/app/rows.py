"""Many rows at once: any multi-row input becomes one float64 [N, 7] array in FEATURES order,
checked once by the contract's rules.

The instances and columns of a batch body and the tensors of a v2 request all end in
``check_rows``. A single row is validated by its pydantic model (app.schemas) instead: the
same rules from the same contract, with pydantic's messages, which these mirror.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np
from fastapi.exceptions import RequestValidationError

from penguin_contract import FEATURES, FIELDS, code_for
from penguin_contract import Field as ContractField

_MINIMA = np.array([spec.minimum for spec in FIELDS])
_MAXIMA = np.array([spec.maximum for spec in FIELDS])
_INTEGER = np.array([spec.kind == "integer" for spec in FIELDS])
_NUMBERS = frozenset({int, float})  # bool is not int here: a boolean is no measurement
_MISSING = object()
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


def check_rows(rows: np.ndarray) -> list[RowIssue]:
    """Every value of ``rows`` that breaks the contract: finite, inside its field's closed
    range, integral for integer fields, one of the codes for categorical fields."""
    # NaN and infinities fail the (finite) ranges too.
    valid = (rows >= _MINIMA) & (rows <= _MAXIMA) & (~_INTEGER | (np.floor(rows) == rows))
    for index, spec in enumerate(FIELDS):
        if spec.codes is not None:
            valid[:, index] &= np.isin(rows[:, index], list(spec.codes))
    return [
        _issue(int(row), FIELDS[column], float(rows[row, column]))
        for row, column in np.argwhere(~valid)
    ]


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
    """[{field: value, ...}, ...] -> checked rows; RequestValidationError naming each issue."""
    try:
        table = [[instance[name] for name in FEATURES] for instance in instances]
        if set(map(type, chain.from_iterable(table))) <= _NUMBERS:
            return _checked(np.array(table, dtype=np.float64), _instance_location)
    except (KeyError, TypeError, OverflowError):
        pass  # something is missing or not a number: go value by value, to say what
    table, issues = [], []
    for index, instance in enumerate(instances):
        if not isinstance(instance, dict):
            message = f"Input should be an object with the fields {', '.join(FEATURES)}"
            error = {"loc": ("body", "instances", index), "type": "dict_type", "msg": message}
            raise RequestValidationError([error])
        row = [_number(spec, instance.get(spec.name, _MISSING), index, issues) for spec in FIELDS]
        table.append(row)
    _raise_if_any(issues, _instance_location)
    return _checked(np.array(table, dtype=np.float64), _instance_location)


def rows_from_columns(columns: dict[str, list[Any]]) -> np.ndarray:
    """{field: [values], ...} (equal lengths) -> checked rows; RequestValidationError."""
    missing = [name for name in FEATURES if name not in columns]
    if missing:
        errors = [
            {"loc": ("body", "columns", name), "type": "missing", "msg": "Field required"}
            for name in missing
        ]
        raise RequestValidationError(errors)
    lengths = {name: len(columns[name]) for name in FEATURES}
    if len(set(lengths.values())) > 1:
        message = f"every column must have the same length; got {lengths}"
        raise RequestValidationError(
            [{"loc": ("body", "columns"), "type": "value_error", "msg": message}]
        )
    issues: list[RowIssue] = []
    table = [_column(spec, columns[spec.name], issues) for spec in FIELDS]
    _raise_if_any(issues, _column_location)
    return _checked(np.column_stack(table), _column_location)


def _column(spec: ContractField, values: list[Any], issues: list[RowIssue]) -> np.ndarray:
    if set(map(type, values)) <= _NUMBERS:
        try:
            return np.array(values, dtype=np.float64)
        except OverflowError:
            pass
    return np.array([_number(spec, value, row, issues) for row, value in enumerate(values)])


def _number(spec: ContractField, value: Any, row: int, issues: list[RowIssue]) -> float:
    """``value`` as a float (a categorical field's name as its code); else its issue."""
    if type(value) in _NUMBERS:
        try:
            return float(value)
        except OverflowError:
            issues.append(
                RowIssue(row, spec.name, "finite_number", "Input should be a finite number")
            )
            return 0.0
    if value is _MISSING:
        issues.append(RowIssue(row, spec.name, "missing", "Field required"))
    elif isinstance(value, str) and spec.codes is not None:
        try:
            return float(code_for(spec.codes, value))
        except ValueError as error:
            issues.append(RowIssue(row, spec.name, "value_error", str(error), value))
    else:
        kind = "int_type" if spec.kind == "integer" else "float_type"
        issues.append(RowIssue(row, spec.name, kind, _TYPE_MESSAGES[kind], value))
    return 0.0


_TYPE_MESSAGES = {
    "int_type": "Input should be a valid integer",
    "float_type": "Input should be a valid number",
}


def _checked(rows: np.ndarray, locate: Locate) -> np.ndarray:
    _raise_if_any(check_rows(rows), locate)
    return rows


def _raise_if_any(issues: list[RowIssue], locate: Locate) -> None:
    if issues:
        raise RequestValidationError([issue.as_error(locate) for issue in issues])


def _instance_location(row: int, field: str) -> tuple:
    return ("body", "instances", row, field)


def _column_location(row: int, field: str) -> tuple:
    return ("body", "columns", field, row)
