from __future__ import annotations

from orchestration.defs.promotion.gate import (
    COMPARED_TAG,
    PASSED,
    REASONS_TAG,
    REJECTED,
    VERDICT_TAG,
    GatePolicy,
    decide,
    gate_decision,
    verdict_tags,
)

BASE = {"pr_auc": 0.6, "precision": 0.7, "recall": 0.5, "false_alarms_per_device_day": 0.4}


def test_first_model_promotes_when_it_passes_the_floors() -> None:
    d = decide("m", BASE, None, GatePolicy(floors={"pr_auc": 0.5}))
    assert d.promote and d.reasons == []


def test_first_model_below_a_floor_is_rejected_with_the_reason() -> None:
    d = decide("m", {**BASE, "pr_auc": 0.3}, None, GatePolicy(floors={"pr_auc": 0.5}))
    assert not d.promote and "pr_auc" in d.reasons[0] and "floor" in d.reasons[0]


def test_challenger_must_beat_champion_by_the_margin() -> None:
    policy = GatePolicy(margin=0.05)
    assert decide("m", {**BASE, "pr_auc": 0.66}, BASE, policy).promote
    d = decide("m", {**BASE, "pr_auc": 0.63}, BASE, policy)
    assert not d.promote and "does not beat champion" in d.reasons[0]


def test_guardrail_worse_beyond_tolerance_rejects_even_with_better_primary() -> None:
    policy = GatePolicy(tolerance=0.05)
    ok = decide("m", {**BASE, "pr_auc": 0.8, "recall": 0.46}, BASE, policy)
    assert ok.promote
    bad = decide("m", {**BASE, "pr_auc": 0.8, "false_alarms_per_device_day": 1.6}, BASE, policy)
    assert not bad.promote and "false_alarms_per_device_day" in bad.reasons[0]


def test_nan_primary_metric_never_promotes() -> None:
    d = decide("m", {**BASE, "pr_auc": float("nan")}, BASE, GatePolicy())
    assert not d.promote


def test_a_tie_never_promotes_whatever_the_margin() -> None:
    for margin in (0.0, 0.001, -0.0):
        d = decide("m", dict(BASE), dict(BASE), GatePolicy(margin=margin))
        assert not d.promote and "ties champion" in d.reasons[0]
    assert decide("m", {**BASE, "pr_auc": 0.6 + 1e-6}, BASE, GatePolicy(margin=0.0)).promote


def _entry(champion: dict[str, object] | None, problems: list[str] | None = None) -> dict:
    return {
        "model": "m",
        "challenger": {"version": "2", "metrics": {**BASE, "pr_auc": 0.3}},
        "champion": champion,
        "problems": problems or [],
    }


def test_a_broken_champion_is_not_compared_the_floors_decide() -> None:
    policy = GatePolicy(floors={"pr_auc": 0.2})
    broken = {"version": "1", "metrics": None, "broken": "champion v1 can no longer be scored"}
    assert gate_decision(_entry(broken), policy).promote
    # Compared with a working champion the same challenger loses.
    working = {"version": "1", "metrics": BASE}
    assert not gate_decision(_entry(working), policy).promote
    # Below a floor, a broken champion does not make a weak challenger pass.
    d = gate_decision(_entry(broken), GatePolicy(floors={"pr_auc": 0.5}))
    assert not d.promote and "floor" in d.reasons[0]


def test_problems_found_by_the_evaluation_reject_and_are_recorded_as_tags() -> None:
    d = gate_decision(_entry(None, ["does not load through mlflow.pyfunc"]), GatePolicy())
    assert not d.promote and d.reasons == ["does not load through mlflow.pyfunc"]
    tags = verdict_tags(d, "run-1", "")
    assert tags[VERDICT_TAG] == REJECTED and "pyfunc" in tags[REASONS_TAG]
    ok = verdict_tags(gate_decision(_entry(None), GatePolicy()), "run-1", "3")
    assert ok[VERDICT_TAG] == PASSED and ok[REASONS_TAG] == "" and ok[COMPARED_TAG] == "3"
