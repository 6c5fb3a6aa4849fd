"""The promotion gate: a blocking check between a model's evaluation and its champion.

It re-decides from the evaluation record this run's evaluation asset wrote in the event log
(the same pure rule, `gate.gate_decision`) and reports which version it judged; the champion
asset promotes only that version. A check has no side effects: the `rejected` lifecycle event
and the verdict tags are written by the evaluation asset."""

from __future__ import annotations

from typing import Any

import dagster as dg

from orchestration.defs.promotion.gate import GatePolicy, gate_decision
from orchestration.defs.promotion.runlog import evaluation_entry, materialization_in_run


def gate_result(
    instance: dg.DagsterInstance, run_id: str, evaluation_key: dg.AssetKey, policy: GatePolicy
) -> dg.AssetCheckResult:
    """Passed when the challenger this run evaluated meets the gate's rule."""
    mat = materialization_in_run(instance, run_id, evaluation_key)
    if mat is None or "evaluation" not in mat:
        return dg.AssetCheckResult(
            passed=False,
            metadata={"reasons": dg.MetadataValue.json(["no evaluation in this run"])},
        )
    entry = evaluation_entry(mat)
    d = gate_decision(entry, policy)
    champ = entry.get("champion") or {}
    metadata: dict[str, Any] = {
        "model": entry["model"],
        "version": str(entry["challenger"]["version"]),
        "champion_version": str(champ.get("version") or ""),
        "reasons": dg.MetadataValue.json(d.reasons),
    }
    return dg.AssetCheckResult(passed=d.promote, metadata=metadata)
