"""The penguin data contract: one source of truth for data prep, trainer and API.

Every encoding, range, artifact name and metric column used anywhere in the project
comes from this package; nothing else spells them out again.
"""

from penguin_contract.contract import (
    FEATURES,
    FIELDS,
    ISLANDS,
    METADATA_COLUMNS,
    METRIC_COLUMNS,
    MODEL_FILE_SUFFIX,
    MODEL_NAME_PATTERN,
    REPORT_COLUMNS,
    RESERVED_MODEL_NAMES,
    SEXES,
    SPECIES,
    TARGET,
    Field,
    code_for,
    model_filename,
    model_name_from_filename,
    normalize_model_name,
)
from penguin_contract.files import atomic_write_bytes

__all__ = [
    "FEATURES",
    "FIELDS",
    "ISLANDS",
    "METADATA_COLUMNS",
    "METRIC_COLUMNS",
    "MODEL_FILE_SUFFIX",
    "MODEL_NAME_PATTERN",
    "REPORT_COLUMNS",
    "RESERVED_MODEL_NAMES",
    "SEXES",
    "SPECIES",
    "TARGET",
    "Field",
    "atomic_write_bytes",
    "code_for",
    "model_filename",
    "model_name_from_filename",
    "normalize_model_name",
]
