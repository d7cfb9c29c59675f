"""Field encodings, valid ranges, artifact naming and report columns."""

import re
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal

SPECIES: MappingProxyType[int, str] = MappingProxyType({1: "Adelie", 2: "Chinstrap", 3: "Gentoo"})
ISLANDS: MappingProxyType[int, str] = MappingProxyType({1: "Torgersen", 2: "Biscoe", 3: "Dream"})
SEXES: MappingProxyType[int, str] = MappingProxyType({0: "female", 1: "male"})

TARGET = "species"


@dataclass(frozen=True)
class Field:
    """One request/feature field: its valid closed range and, if categorical, its codes."""

    name: str
    kind: Literal["integer", "number"]
    minimum: float
    maximum: float
    description: str
    codes: MappingProxyType[int, str] | None = field(default=None)

    def allowed(self) -> str:
        """Human-readable statement of the allowed values, used in error messages."""
        if self.codes is not None:
            return ", ".join(f"{code} ({label})" for code, label in self.codes.items())
        return f"{self.minimum:g} to {self.maximum:g}"


def _categorical(name: str, codes: MappingProxyType[int, str], description: str) -> Field:
    return Field(name, "integer", min(codes), max(codes), description, codes)


# Order matters: models are trained on these columns in exactly this order.
FIELDS: tuple[Field, ...] = (
    _categorical("island", ISLANDS, "Island where the bird was observed"),
    Field("bill_length_mm", "number", 10, 100, "Bill (culmen) length in millimetres"),
    Field("bill_depth_mm", "number", 5, 35, "Bill (culmen) depth in millimetres"),
    Field("flipper_length_mm", "number", 100, 300, "Flipper length in millimetres"),
    Field("body_mass_g", "number", 1000, 10000, "Body mass in grams"),
    _categorical("sex", SEXES, "Sex of the bird"),
    Field("year", "integer", 2000, 2030, "Year of the observation"),
)
FEATURES: tuple[str, ...] = tuple(f.name for f in FIELDS)


def code_for(codes: MappingProxyType[int, str], label: str) -> int:
    """Code of a label in a code -> name map, case-insensitively ('biscoe' -> 2)."""
    wanted = label.strip().lower()
    for code, name in codes.items():
        if name.lower() == wanted:
            return code
    raise ValueError(f"{label!r} is not one of: {', '.join(codes.values())}")


# --- Artifacts -------------------------------------------------------------------------

MODEL_FILE_SUFFIX = "_model.pkl"
# The trainer's ONNX twin of a pickle, beside it: '{name}_model.onnx'.
ONNX_FILE_SUFFIX = "_model.onnx"
# The trainer's test-set confusion matrix, in the report directory.
CONFUSION_MATRIX_SUFFIX = "_confusion_matrix.png"
MODEL_NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
# "best" is the API's alias for the model with the highest test_f1.
RESERVED_MODEL_NAMES: frozenset[str] = frozenset({"best"})


def normalize_model_name(name: str) -> str:
    """Lower-case and validate a model name; the result is safe to join to a directory."""
    if not isinstance(name, str):
        raise ValueError(f"Model name must be a string, got {type(name).__name__}")
    normalized = name.strip().lower()
    if not MODEL_NAME_PATTERN.fullmatch(normalized):
        raise ValueError(
            f"Invalid model name {name!r}: use 1-64 letters, digits, '_' or '-', "
            "starting with a letter or digit"
        )
    if normalized in RESERVED_MODEL_NAMES:
        raise ValueError(f"Model name {name!r} is reserved")
    return normalized


def model_filename(name: str) -> str:
    """File name of a model's pickle: '{name}_model.pkl'."""
    return f"{normalize_model_name(name)}{MODEL_FILE_SUFFIX}"


def onnx_filename(name: str) -> str:
    """File name of a model's ONNX twin: '{name}_model.onnx'."""
    return f"{normalize_model_name(name)}{ONNX_FILE_SUFFIX}"


def confusion_matrix_filename(name: str) -> str:
    """File name of a model's confusion matrix PNG: '{name}_confusion_matrix.png'."""
    return f"{normalize_model_name(name)}{CONFUSION_MATRIX_SUFFIX}"


def model_name_from_filename(filename: str) -> str | None:
    """Model name for a '{name}_model.pkl' file name, or None if it does not follow the rule."""
    if not filename.endswith(MODEL_FILE_SUFFIX):
        return None
    stem = filename[: -len(MODEL_FILE_SUFFIX)]
    try:
        name = normalize_model_name(stem)
    except ValueError:
        return None
    return name if name == stem else None


# --- Versions ({models_dir}/versions/{name}/{sha256}/) and their history -----------------

# Every training is kept as a version in this folder of the models directory, which the API
# does not serve: '{models_dir}/versions/{name}/{sha256 of the pickle}/'.
VERSIONS_DIRNAME = "versions"
# One JSON line per decision about a model's versions, in the report directory.
HISTORY_SUFFIX = "_history.jsonl"
# train_and_save(promote=...): "always" serves every new version; "if_better" only one whose
# test_f1 is at least the served version's on the same test split.
PROMOTION_RULES: tuple[str, ...] = ("always", "if_better")
DECISIONS: tuple[str, ...] = ("promoted", "rejected", "rolled_back")


def history_filename(name: str) -> str:
    """File name of a model's history in the report directory: '{name}_history.jsonl'."""
    return f"{normalize_model_name(name)}{HISTORY_SUFFIX}"


# --- Report (model_metrics.pkl: a pickled pandas DataFrame, one row per model) ---------

METRIC_COLUMNS: tuple[str, ...] = (
    "train_accuracy",
    "test_accuracy",
    "test_precision",
    "test_recall",
    "test_f1",
)
# What a server needs to trust and describe a model, stored in the same report row.
METADATA_COLUMNS: tuple[str, ...] = (
    "trained_at",  # ISO 8601, UTC
    "sklearn_version",
    "sha256",  # of the {name}_model.pkl bytes
    "feature_names",  # list[str], the contract's FEATURES
    "classes",  # list[int], species codes
    "estimator",  # class name of the final step
    "params",  # JSON string of the final step's get_params()
    "onnx",  # bool: an ONNX twin that agrees with the pipeline was written
    "onnx_reason",  # why there is no ONNX twin (None when onnx is True)
    "per_class",  # JSON: {species name: {precision, recall, f1, support}} on the test split
)
REPORT_COLUMNS: tuple[str, ...] = ("model", *METRIC_COLUMNS, *METADATA_COLUMNS)


def report_json_path(report_path: Path | str) -> Path:
    """The report's JSON twin beside it (model_metrics.pkl -> model_metrics.json): the same rows,
    readable without unpickling anything."""
    return Path(report_path).with_suffix(".json")


# --- ONNX twin ({name}_model.onnx) -------------------------------------------------------

# One input: a double tensor [N, 7], columns in FEATURES order.
ONNX_INPUT_NAME = "features"
# Outputs: int64 species codes [N]; float probabilities [N, len(classes)] (in the order of
# the "classes" metadata entry), absent for models without predict_proba.
ONNX_LABEL_OUTPUT = "label"
ONNX_PROBABILITIES_OUTPUT = "probabilities"
# metadata_props of the ONNX model; values are strings (lists as JSON).
ONNX_METADATA_KEYS: tuple[str, ...] = (
    "pkl_sha256",  # sha256 of the exact {name}_model.pkl bytes this file is the twin of
    "sklearn_version",
    "skl2onnx_version",
    "feature_names",  # JSON list, FEATURES
    "classes",  # JSON list of species codes, the order of the probabilities' columns
)
