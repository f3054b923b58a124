"""Write a bundle folder (the five JSON documents of `sources.bundle` and the files they point
to): the one writer behind the demo bundle (`commands.demo`), the test bundles
(`tests/storage/bundles.py`) and the benches' generated projects. `sources.bundle` reads what
this writes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sources.bundle import (
    BILLING_PERIODS_FILE,
    COMMITMENTS_FILE,
    PROJECT_FILE,
    REQUISITIONS_FILE,
    USERS_FILE,
)


@dataclass
class BundleData:
    """The content of a bundle: the five JSON documents and the files by relative path."""

    project: dict[str, Any]
    billing_periods: list[dict[str, Any]]
    commitments: list[dict[str, Any]]
    users: list[dict[str, Any]]
    requisitions: list[dict[str, Any]]
    files: dict[str, bytes] = field(default_factory=dict)

    def requisition(self, requisition_id: int) -> dict[str, Any]:
        """The requisition with this id."""
        return next(entry for entry in self.requisitions if entry["id"] == requisition_id)


def write_bundle_folder(folder: Path, data: BundleData, *, indent: int | None = 2) -> Path:
    """Write ``data`` into ``folder`` (created if missing) and return the folder: each document
    as UTF-8 JSON (``indent`` as for `json.dumps`, a final newline), each file at its relative
    path. Existing files of the same names are replaced; nothing else is removed."""
    folder.mkdir(parents=True, exist_ok=True)
    documents = {
        PROJECT_FILE: data.project,
        BILLING_PERIODS_FILE: data.billing_periods,
        COMMITMENTS_FILE: data.commitments,
        USERS_FILE: data.users,
        REQUISITIONS_FILE: data.requisitions,
    }
    for name, document in documents.items():
        (folder / name).write_text(json.dumps(document, indent=indent) + "\n", encoding="utf-8")
    for relative, content in data.files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return folder
