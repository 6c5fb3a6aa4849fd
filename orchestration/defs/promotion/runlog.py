"""What happened earlier in the same Dagster run, read from the instance's event log.

The gate check and the champion asset read the evaluation and the gate's verdict from the
run's own events, not from a file or an IO manager: a value recorded by another run can never
be mistaken for this run's."""

from __future__ import annotations

import json
from typing import Any

import dagster as dg


def _value(v: Any) -> Any:
    return getattr(v, "value", v)


def materialization_in_run(
    instance: dg.DagsterInstance, run_id: str, key: dg.AssetKey
) -> dict[str, Any] | None:
    """The metadata of the latest materialization of `key` in run `run_id`, or None."""
    found: dict[str, Any] | None = None
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
        mat = entry.asset_materialization
        if mat is not None and mat.asset_key == key:
            found = {k: _value(v) for k, v in mat.metadata.items()}
    return found


def check_in_run(
    instance: dg.DagsterInstance, run_id: str, key: dg.AssetCheckKey
) -> tuple[bool, dict[str, Any]] | None:
    """(passed, metadata) of the latest evaluation of check `key` in run `run_id`, or None."""
    found: tuple[bool, dict[str, Any]] | None = None
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
        ev = entry.asset_check_evaluation
        if ev is not None and ev.asset_check_key == key:
            found = (bool(ev.passed), {k: _value(v) for k, v in ev.metadata.items()})
    return found


def evaluation_entry(metadata: dict[str, Any]) -> dict[str, Any]:
    """The evaluation record an evaluation asset put in its metadata (key `evaluation`)."""
    raw = metadata["evaluation"]
    return json.loads(raw) if isinstance(raw, str) else dict(raw)
