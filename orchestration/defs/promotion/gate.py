"""The promotion rule: a pure decision over the challenger's and champion's hold-out metrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Guardrails: metric -> +1 when higher is better, -1 when lower is better.
GUARDRAILS: dict[str, int] = {"recall": 1, "precision": 1, "false_alarms_per_device_day": -1}


@dataclass(frozen=True, slots=True)
class GatePolicy:
    """Primary metric margin, guardrail tolerance and the floors every challenger must pass.

    `margin` is the declared least improvement: a challenger must beat the champion's primary
    metric by strictly more than it, so a tie (equal figures, e.g. the same data retrained)
    never promotes, whatever the margin."""

    primary: str = "pr_auc"
    margin: float = 0.001
    guardrails: dict[str, int] = field(default_factory=lambda: dict(GUARDRAILS))
    tolerance: float = 0.05
    floors: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether the challenger may replace the champion, and why not."""

    model_name: str
    promote: bool
    reasons: list[str]


def decide(
    model_name: str,
    challenger: dict[str, float],
    champion: dict[str, float] | None,
    policy: GatePolicy,
) -> Decision:
    """Challenger wins when it passes the floors, its primary metric beats the champion's by more
    than `margin` (a tie never wins) and no guardrail is worse by more than `tolerance`
    (x max(|champion|, 1)). `champion` None: no champion, or one that can no longer be scored;
    the floors alone then decide."""
    reasons: list[str] = []
    for metric, floor in policy.floors.items():
        value = challenger.get(metric, float("nan"))
        if not value >= floor:
            reasons.append(f"{metric} {value:.4f} below floor {floor:.4f}")
    if champion is not None:
        p = policy.primary
        new, old = challenger.get(p, float("nan")), champion.get(p, float("nan"))
        if not new - old > policy.margin:
            what = "ties" if new == old else "does not beat"
            reasons.append(
                f"{p} {new:.4f} {what} champion {old:.4f}: must beat it by more than "
                f"margin {policy.margin:.4f}"
            )
        for metric, sign in policy.guardrails.items():
            if metric not in challenger or metric not in champion:
                continue
            new, old = challenger[metric], champion[metric]
            # Absolute for fractions in [0, 1], relative for larger quantities (alarms per day).
            slack = policy.tolerance * max(abs(old), 1.0)
            worse = (old - new) if sign > 0 else (new - old)
            if worse > slack:
                reasons.append(
                    f"guardrail {metric} {new:.4f} worse than champion {old:.4f} "
                    f"beyond tolerance {slack:.4f}"
                )
    return Decision(model_name, promote=not reasons, reasons=reasons)


#: MLflow model-version tags the evaluation writes (read by `edaml models list | promote`):
#: `gate_verdict` is `passed` or `rejected`; `gate_reasons` the reasons, one per line (empty
#: when passed); `gate_dagster_run_id` the Dagster run that evaluated the version;
#: `gate_compared_with` the champion version it was compared with (empty: none or unscorable).
VERDICT_TAG = "gate_verdict"
REASONS_TAG = "gate_reasons"
GATE_RUN_TAG = "gate_dagster_run_id"
COMPARED_TAG = "gate_compared_with"
PASSED, REJECTED = "passed", "rejected"


def gate_decision(entry: dict[str, Any], policy: GatePolicy) -> Decision:
    """The gate's decision on an evaluation record (`challenger`, `champion`, `problems`): the
    rule of `decide`, plus every problem the evaluation found (e.g. the version does not serve
    through pyfunc). A champion without metrics (unscorable, or another feature set) is not
    compared: the challenger is judged on the floors alone (the guardrails a first model meets)."""
    champion = entry.get("champion") or {}
    if (entry.get("holdout") or {}).get("positives", 1) == 0:
        # No positive label in the hold-out (a dataset without labels, or none in its latest
        # part): no labelled figure can judge, so neither the floors nor the champion comparison
        # apply; the version promotes if it serves (the problems below).
        reasons = list(entry.get("problems", []))
        return Decision(str(entry["model"]), promote=not reasons, reasons=reasons)
    d = decide(
        str(entry["model"]),
        entry["challenger"]["metrics"],
        champion.get("metrics") or None,
        policy,
    )
    reasons = [*d.reasons, *entry.get("problems", [])]
    return Decision(d.model_name, promote=not reasons, reasons=reasons)


def verdict_tags(decision: Decision, run_id: str, compared_with: str) -> dict[str, str]:
    """The version tags that record a gate decision."""
    return {
        VERDICT_TAG: PASSED if decision.promote else REJECTED,
        REASONS_TAG: "\n".join(decision.reasons)[:4900],
        GATE_RUN_TAG: run_id,
        COMPARED_TAG: compared_with,
    }
