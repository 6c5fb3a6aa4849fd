from __future__ import annotations

from orchestration.defs.promotion.gate import GatePolicy, decide

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
