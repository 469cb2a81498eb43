"""The web server's finished results on disk, so a restart or a crash loses none of them.

Each job is two files in the results folder: ``<id>.json`` (its public state, settings record and
error; rewritten atomically at every state change that matters) and ``<id>.png`` (the result, written
atomically before the job is marked done). Memory then holds only small records, whatever the image
size. At start, jobs found queued or running were interrupted: they are marked failed with a reason,
since their uploads lived only in memory.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from impasto.io import write_bytes_atomic

INTERRUPTED = "the server stopped before this job finished; submit it again"
_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


class ResultStore:
    """Finished jobs' files under ``folder`` (created on first use, private to the user)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def _path(self, job_id: str, suffix: str) -> Path:
        if not _ID.match(job_id):  # ids are ours, but a path is only ever built from a checked one
            raise ValueError(f"bad job id {job_id!r}")
        return self.folder / f"{job_id}{suffix}"

    def _ensure(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)

    def save_record(self, job_id: str, record: dict[str, Any]) -> None:
        self._ensure()
        write_bytes_atomic(self._path(job_id, ".json"), json.dumps(record, default=str).encode())

    def save_result(self, job_id: str, png: bytes) -> Path:
        self._ensure()
        path = self._path(job_id, ".png")
        write_bytes_atomic(path, png)
        return path

    def result_path(self, job_id: str) -> Path:
        return self._path(job_id, ".png")

    def delete(self, job_id: str) -> None:
        for suffix in (".json", ".png"):
            self._path(job_id, suffix).unlink(missing_ok=True)

    def load(self) -> list[dict[str, Any]]:
        """Every readable record, oldest first; unreadable ones are skipped (a half-written file cannot
        exist: writes are atomic, but a user may have edited the folder)."""
        if not self.folder.is_dir():
            return []
        records = []
        for path in self.folder.glob("*.json"):
            try:
                record = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if isinstance(record, dict) and _ID.match(str(record.get("id", ""))) and path.stem == record["id"] \
                    and _number(record.get("created") or 0) and _number(record.get("finished") or 0):
                records.append(record)
        return sorted(records, key=lambda r: float(r.get("created") or 0))


def _number(value: object) -> bool:
    """A record's time field as written: a number (a user's edit such as "yesterday" makes it unreadable)."""
    return isinstance(value, int | float) and not isinstance(value, bool)
