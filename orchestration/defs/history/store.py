"""Where one dataset's replayed history lives: one folder per day, keyed by the history code.

    <root>/<dataset>/history/<code_version>/date=YYYY-MM-DD/
        readings.parquet      the day's valid readings, de-duplicated, in log order
        maintenance.parquet   the day's maintenance events (datasets with event labels)
        stats.json            what the replay read (offsets, counts, digests, coverage)
        validity.json         the checks' verdict on exactly that content (digest)

A day is rewritten whole (each file atomically) when its partition is re-materialised; a change
of the history code (`code_version`) starts a new folder, so days replayed by older code are
never mixed with newer ones. Two runs replaying the same day write the same content.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class DatasetHistory:
    """The history folders of one dataset under one version of the history code."""

    base: Path

    @classmethod
    def at(cls, root: Path, dataset: str, code_version: str) -> DatasetHistory:
        return cls(root / dataset / "history" / code_version)

    def day_dir(self, day: str) -> Path:
        return self.base / f"date={day}"

    def readings_file(self, day: str) -> Path:
        return self.day_dir(day) / "readings.parquet"

    def maintenance_file(self, day: str) -> Path:
        return self.day_dir(day) / "maintenance.parquet"

    def stored_days(self) -> list[str]:
        """The days whose replay finished (their stats are written last)."""
        if not self.base.exists():
            return []
        return sorted(p.parent.name.removeprefix("date=") for p in self.base.glob("*/stats.json"))

    def stats(self, day: str) -> dict[str, Any] | None:
        return _read_json(self.day_dir(day) / "stats.json")

    def write_stats(self, day: str, stats: dict[str, Any]) -> None:
        _write_json(self.day_dir(day) / "stats.json", stats)

    def verdict(self, day: str) -> dict[str, Any] | None:
        return _read_json(self.day_dir(day) / "validity.json")

    def write_verdict(self, day: str, verdict: dict[str, Any]) -> None:
        _write_json(self.day_dir(day) / "validity.json", verdict)

    def clear_verdict(self, day: str) -> None:
        (self.day_dir(day) / "validity.json").unlink(missing_ok=True)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    return data


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # A name of its own: two runs may write the same day at once (same content, either wins).
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    tmp.replace(path)
