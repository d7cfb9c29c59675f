"""A model's versions: the trainer's history, {name}_history.jsonl in the report directory
(JSON only, so it works with ALLOW_PICKLE=false), newest first, read on every request. The
served version is the sha256 of the served pickle, as the registry loaded it."""

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from app.errors import HistoryUnavailableError
from app.models.files import read_regular_file
from app.schemas import Metrics
from penguin_contract import history_filename

MAX_HISTORY_BYTES = 16 * 1024 * 1024


class VersionEntry(BaseModel):
    """One decision of the trainer about one version (a line of the history)."""

    version: str = Field(description="SHA-256 of the version's pickle, as model_version")
    served: bool = Field(False, description="This version is the one served now")
    decision: Literal["promoted", "rejected", "rolled_back"]
    rule: Literal["always", "if_better"] | None = Field(
        None, description="The promotion rule of the training (null for a rollback)"
    )
    reason: str = Field(description="Why it was promoted, rejected or rolled back")
    decided_at: str
    trained_at: str | None = None
    estimator: str | None = None
    metrics: Metrics  # type: ignore[valid-type]
    previous_version: str | None = Field(None, description="The version served before")
    previous_metrics: Metrics | None = Field(  # type: ignore[valid-type]
        None, description="The version served before, scored on the same test split"
    )


class ModelVersions(BaseModel):
    model: str
    served_version: str = Field(description="SHA-256 of the served pickle")
    versions: list[VersionEntry] = Field(description="The history, newest first")


def model_versions(report_dir: Path, name: str, served_version: str) -> ModelVersions:
    entries = [
        entry.model_copy(update={"served": entry.version == served_version})
        for entry in reversed(read_history(report_dir / history_filename(name)))
    ]
    return ModelVersions(model=name, served_version=served_version, versions=entries)


def read_history(path: Path) -> list[VersionEntry]:
    """The entries of a history file, oldest first; a line that is not one is skipped."""
    try:
        data = read_regular_file(path, MAX_HISTORY_BYTES, follow_symlinks=False)
    except FileNotFoundError:
        return []
    except OSError as error:
        raise HistoryUnavailableError(path.name, str(error)) from None
    entries = []
    for line in data.splitlines():
        try:
            entries.append(VersionEntry.model_validate_json(line))
        except ValidationError:
            continue
    return entries
