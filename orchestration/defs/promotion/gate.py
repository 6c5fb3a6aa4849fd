"""The promotion rule: a pure decision over the challenger's and champion's hold-out metrics."""

from __future__ import annotations

from dataclasses import dataclass, field

#: Guardrails: metric -> +1 when higher is better, -1 when lower is better.
GUARDRAILS: dict[str, int] = {"recall": 1, "precision": 1, "false_alarms_per_device_day": -1}


@dataclass(frozen=True, slots=True)
class GatePolicy:
    """Primary metric margin, guardrail tolerance and the floors a first model must pass."""

    primary: str = "pr_auc"
    margin: float = 0.0
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
    """Challenger wins when its primary metric beats the champion's by `margin` and no guardrail
    is worse by more than `tolerance` (x max(|champion|, 1)); without a champion, it must pass the floors."""
    reasons: list[str] = []
    for metric, floor in policy.floors.items():
        value = challenger.get(metric, float("nan"))
        if not value >= floor:
            reasons.append(f"{metric} {value:.4f} below floor {floor:.4f}")
    if champion is not None:
        p = policy.primary
        new, old = challenger.get(p, float("nan")), champion.get(p, float("nan"))
        if not new - old >= policy.margin:
            reasons.append(
                f"{p} {new:.4f} does not beat champion {old:.4f} by margin {policy.margin:.4f}"
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
