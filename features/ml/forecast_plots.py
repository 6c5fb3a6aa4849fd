"""Figures of demand forecasts: forecast against actual around surges (pure; returns a Figure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from features.ml.forecast import MINUTE_MS

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def surge_panels(
    grid: pd.DataFrame,
    actual: Mapping[int, np.ndarray],
    preds: Mapping[str, pd.DataFrame],
    surges: pd.DataFrame,
    *,
    horizon: int = 60,
    panels: int = 6,
    before_min: int = 180,
    after_min: int = 180,
) -> Figure:
    """One panel per surge (the largest `panels`): actual demand of the bucket `horizon` minutes
    ahead, each model's median and 10-90 % band and its seasonal expectation, drawn at the
    bucket's end; the surge's start, each model's surge flags as ticks."""
    from matplotlib.figure import Figure

    chosen = surges.sort_values("size", ascending=False).head(panels)
    n = max(len(chosen), 1)
    cols = 2 if n > 1 else 1
    rows = (n + cols - 1) // cols
    fig = Figure(figsize=(6 * cols, 2.6 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    colours = ("tab:blue", "tab:orange", "tab:green")
    for ax, (_, s) in zip(axes, chosen.iterrows(), strict=False):
        sel = (
            (grid["entity"] == s["key"])
            & (grid["ts_ms"] >= s["start_ms"] - before_min * MINUTE_MS)
            & (grid["ts_ms"] <= s["start_ms"] + after_min * MINUTE_MS)
        ).to_numpy()
        t_min = (grid["ts_ms"].to_numpy()[sel] + horizon * MINUTE_MS - s["start_ms"]) / MINUTE_MS
        ax.plot(t_min, actual[horizon][sel], color="0.2", lw=1.0, label="actual")
        for (name, p), c in zip(preds.items(), colours, strict=False):
            q50 = p[f"q50_{horizon}m"].to_numpy()[sel]
            ax.plot(t_min, q50, color=c, lw=1.0, label=f"{name} median")
            if f"q10_{horizon}m" in p and f"q90_{horizon}m" in p:
                lo, hi = p[f"q10_{horizon}m"].to_numpy()[sel], p[f"q90_{horizon}m"].to_numpy()[sel]
                ax.fill_between(t_min, lo, hi, color=c, alpha=0.15, lw=0)
            flag = np.zeros(int(sel.sum()), dtype=bool)
            for col in p.columns:
                if col.startswith("surge_"):
                    flag |= p[col].to_numpy()[sel]
            alert_t = (grid["ts_ms"].to_numpy()[sel][flag] - s["start_ms"]) / MINUTE_MS
            ymax = float(np.nanmax(actual[horizon][sel])) if sel.any() else 1.0
            ax.plot(alert_t, np.full(len(alert_t), -0.05 * ymax), "|", color=c, ms=6)
        exp = next(iter(preds.values()))[f"expected_{horizon}m"].to_numpy()[sel]
        ax.plot(t_min, exp, color="0.5", lw=0.8, ls="--", label="seasonal expectation")
        ax.axvline(0, color="red", lw=0.8)
        ax.set_title(f"{s['key']}: {s['kind']} ×{s['size']:.1f}", fontsize=9)
        ax.set_xlabel(
            "minutes from surge start (forecasts drawn at their bucket's end)", fontsize=8
        )
        ax.set_ylabel(f"orders / 15 min, {horizon} min ahead", fontsize=8)
    for ax in axes[len(chosen) :]:
        ax.axis("off")
    if len(chosen):
        axes[0].legend(fontsize=7, loc="upper left")
    return fig
