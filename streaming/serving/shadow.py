"""Champion versus challenger on the same readings, accumulated between reports (pure)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(slots=True)
class ShadowWindow:
    """Agreement of decisions and score differences of two versions of one model."""

    champion_version: str
    challenger_version: str
    n_events: int = 0
    n_agree: int = 0
    n_champion_flagged: int = 0
    n_challenger_flagged: int = 0
    sum_abs_diff: float = 0.0
    max_abs_diff: float = 0.0
    start_ms: int = 0

    def add(
        self,
        champion: np.ndarray,
        challenger: np.ndarray,
        champion_threshold: float,
        challenger_threshold: float,
        now_ms: int,
    ) -> None:
        ok = np.isfinite(champion) & np.isfinite(challenger)
        a, b = champion[ok], challenger[ok]
        if len(a) == 0:
            return
        if self.n_events == 0:
            self.start_ms = now_ms
        fa, fb = a >= champion_threshold, b >= challenger_threshold
        diff = np.abs(a - b)
        self.n_events += len(a)
        self.n_agree += int(np.count_nonzero(fa == fb))
        self.n_champion_flagged += int(np.count_nonzero(fa))
        self.n_challenger_flagged += int(np.count_nonzero(fb))
        self.sum_abs_diff += float(diff.sum())
        self.max_abs_diff = max(self.max_abs_diff, float(diff.max()))

    def summary(self) -> dict[str, float]:
        n = max(self.n_events, 1)
        return {
            "agreement": self.n_agree / n,
            "champion_alert_rate": self.n_champion_flagged / n,
            "challenger_alert_rate": self.n_challenger_flagged / n,
            "mean_abs_score_diff": self.sum_abs_diff / n,
            "max_abs_score_diff": self.max_abs_diff,
        }
