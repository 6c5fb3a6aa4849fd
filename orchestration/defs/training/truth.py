"""Anomaly ground truth of a dataset, from the label sources its spec declares.

- `kind: column` (`meaning: anomaly`): the label column of the spec's files (`files:`), read
  with the same layout, entity names and contract as `edaml replay --dataset`, so a run of
  non-normal values of one entity is one interval. Labels never travel on the readings topic:
  the scorer consumes that topic, and a label there would be one step from a feature. A file
  without the column (a clean reference run) counts as the source's `missing` says: `normal`
  (no interval, rows labelled 0) or `unlabelled` (its entity is left out of every labelled
  figure).
- `kind: windows`: a NAB-style windows file, each file's windows as intervals of its entity.
- Neither: the fleet's ground-truth file (`HistoryStorage.ground_truth`, written by
  `edaml backfill --labels`), else no anomaly truth (the failure horizon stands in for it).

`kind: events` (failures on the maintenance topic) reaches training through the replayed
history (`maintenance` files), not through here. `meaning: changepoint` columns are never
labels of either model (and never features).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from features.spec import DatasetSpec

log = logging.getLogger(__name__)

TRUTH_COLUMNS = ["device_id", "fault_type", "start_ms", "end_ms"]


@dataclass(frozen=True)
class Truth:
    """Anomaly intervals (`TRUTH_COLUMNS`), the entities whose rows have no label, and where
    the truth came from (lineage)."""

    intervals: pd.DataFrame | None
    unlabelled: frozenset[str] = frozenset()
    source: str = "none"
    notes: list[str] = field(default_factory=list)


def spec_truth(spec: DatasetSpec, fallback: pd.DataFrame | None) -> Truth:
    """The anomaly truth of `spec` (see the module doc); `fallback`: the storage's ground-truth
    file, used when the spec declares no anomaly label source."""
    sources = [ls for ls in spec.labels if ls.meaning == "anomaly" and ls.kind != "events"]
    if not sources:
        return Truth(fallback, source="ground truth file" if fallback is not None else "none")
    from streaming.sources.replay_csv import (
        LabelRuns,
        RowOk,
        anomaly_windows,
        entity_of,
        layout_for_spec,
        read_rows,
        relative_paths,
    )

    paths = [spec.resolve(f) for f in spec.files]
    missing = [p for p in paths if not p.is_file()]
    notes = [f"label file not found: {p}" for p in missing]
    paths = [p for p in paths if p.is_file()]
    rel = relative_paths(paths, paths)
    rows: list[tuple[str, str, int, int]] = []
    unlabelled: set[str] = set()
    for src in sources:
        if src.kind == "windows":
            wfile = spec.windows_file
            if wfile is None or not Path(wfile).is_file():
                notes.append(f"windows file not found: {wfile}")
                continue
            spans = json.loads(Path(wfile).read_text())
            for p in paths:
                device = entity_of(rel[p])
                rows += [(device, "anomaly_window", a, b) for a, b in anomaly_windows(spans, p)]
            continue
        column = str(src.column)
        for p in paths:
            layout = layout_for_spec(p, spec)
            if column not in layout.label_columns:
                if src.missing == "unlabelled":
                    unlabelled.add(entity_of(rel[p]))
                continue
            runs = LabelRuns()  # the replay's own runs of non-normal values
            for row in read_rows(
                p, layout, device_id=entity_of(rel[p]), contract=spec.contract, id_key=rel[p]
            ):
                if isinstance(row, RowOk):
                    runs.add(row.reading.device_id, row.reading.ts_ms, {column: row.labels[column]})
            rows += runs.close()
    intervals = pd.DataFrame(rows, columns=TRUTH_COLUMNS)
    kinds = "+".join(sorted({s.kind for s in sources}))
    log.info("%s: %d anomaly intervals from %s labels", spec.name, len(intervals), kinds)
    return Truth(intervals, frozenset(unlabelled), f"spec labels ({kinds})", notes)
