"""Every trained version of a model, kept beside the served files, and its history.

- ``{models_dir}/versions/{name}/{sha256}/``: one folder per version, named by the sha256 of
  its pickle: ``{name}_model.pkl``, its ONNX twin ``{name}_model.onnx`` (when proven),
  ``{name}_confusion_matrix.png`` and ``row.json`` (its report row). ``row.json`` is written
  last: a folder without it is no version. The API serves none of these files.
- ``{report_dir}/{name}_history.jsonl``: one JSON line per decision (promoted, rejected,
  rolled_back), oldest first; a new line is added by rewriting the file atomically.

``VersionStore`` only reads and writes files: the trainer holds the report lock around
every call that writes, so two trainings at once take turns.
"""

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from penguin_contract import (
    VERSIONS_DIRNAME,
    atomic_write_bytes,
    confusion_matrix_filename,
    history_filename,
    model_filename,
    onnx_filename,
)

ROW_FILE = "row.json"


@dataclass(frozen=True)
class VersionFiles:
    """What one version is made of: the pickle, its twin (or None), the PNG and the row."""

    pickle: bytes
    onnx: bytes | None
    png: bytes
    row: dict[str, Any]


@dataclass(frozen=True)
class VersionStore:
    models_dir: Path
    report_dir: Path

    def folder(self, name: str, version: str) -> Path:
        return self.models_dir / VERSIONS_DIRNAME / name / version

    def save(self, name: str, files: VersionFiles) -> Path:
        """Write a version's files (the row last); the same version again is rewritten."""
        folder = self.folder(name, files.row["sha256"])
        (folder / onnx_filename(name)).unlink(missing_ok=True)
        atomic_write_bytes(folder / model_filename(name), files.pickle)
        if files.onnx is not None:
            atomic_write_bytes(folder / onnx_filename(name), files.onnx)
        atomic_write_bytes(folder / confusion_matrix_filename(name), files.png)
        atomic_write_bytes(folder / ROW_FILE, json.dumps(files.row, indent=2).encode())
        return folder

    def load(self, name: str, version: str) -> VersionFiles:
        folder = self.folder(name, version)
        twin = folder / onnx_filename(name)
        return VersionFiles(
            pickle=(folder / model_filename(name)).read_bytes(),
            onnx=twin.read_bytes() if twin.exists() else None,
            png=(folder / confusion_matrix_filename(name)).read_bytes(),
            row=json.loads((folder / ROW_FILE).read_text()),
        )

    def kept(self, name: str) -> list[str]:
        """The versions on disk, most recently trained first."""
        try:
            folders = list((self.models_dir / VERSIONS_DIRNAME / name).iterdir())
        except FileNotFoundError:
            return []
        rows = [
            folder / ROW_FILE
            for folder in folders
            if not folder.name.startswith(".") and (folder / ROW_FILE).is_file()
        ]
        rows.sort(key=lambda row: row.stat().st_mtime_ns, reverse=True)
        return [row.parent.name for row in rows]

    def resolve(self, name: str, version: str) -> str:
        """The one kept version that starts with ``version`` (a prefix of 7+ characters)."""
        kept = self.kept(name)
        found = [kept_version for kept_version in kept if kept_version.startswith(version)]
        if len(version) >= 7 and len(found) == 1:
            return found[0]
        listing = ", ".join(kept_version[:12] for kept_version in kept) or "none"
        problem = "matches several" if len(found) > 1 else "is no kept version"
        raise ValueError(
            f"{version!r} {problem} of {name!r} (give 7 or more characters of its sha256); "
            f"kept versions: {listing}"
        )

    def prune(self, name: str, keep: int, served: str | None) -> list[str]:
        """Delete the oldest versions but ``keep`` of them, never the served one."""
        stale = [version for version in self.kept(name) if version != served][keep:]
        for version in stale:
            folder = self.folder(name, version)
            doomed = folder.with_name(f".{version}.deleting")  # a version no more, at once
            shutil.rmtree(doomed, ignore_errors=True)
            os.replace(folder, doomed)
            shutil.rmtree(doomed)
        return stale

    def history_path(self, name: str) -> Path:
        return self.report_dir / history_filename(name)

    def history(self, name: str) -> list[dict[str, Any]]:
        """The decisions about ``name``, oldest first (a line that is not JSON is skipped)."""
        try:
            lines = self.history_path(name).read_text().splitlines()
        except FileNotFoundError:
            return []
        entries = []
        for line in lines:
            try:
                entries.append(json.loads(line))
            except ValueError:
                continue
        return [entry for entry in entries if isinstance(entry, dict)]

    def record(self, name: str, entry: dict[str, Any]) -> None:
        """Add one line to the history: the old lines and the new one, written atomically."""
        path = self.history_path(name)
        try:
            old = path.read_bytes()
        except FileNotFoundError:
            old = b""
        if old and not old.endswith(b"\n"):
            old += b"\n"
        atomic_write_bytes(path, old + json.dumps(entry).encode() + b"\n")


def previously_served(history: list[dict[str, Any]], served: str | None) -> str | None:
    """The version served before ``served``: the newest promoted or restored other version."""
    for entry in reversed(history):
        version = entry.get("version")
        if entry.get("decision") in ("promoted", "rolled_back") and version != served:
            return version
    return None
