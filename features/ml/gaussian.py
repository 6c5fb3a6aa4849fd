"""The windowed-Gaussian baseline (NAB's `windowedGaussian` detector, simplified).

Each value is scored by its distance from the mean of the values before it, in standard
deviations of those values: `|x_t - mean(x_{t-w..t-1})| / std(x_{t-w..t-1})`. NAB's detector
keeps a window of 6400 values (refreshed every 100); here the window slides by one. Rows with
fewer than `min_periods` earlier values, or a zero deviation, score 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: NAB's windowedGaussian window size.
NAB_WINDOW = 6400


def windowed_gaussian_scores(
    values: np.ndarray, window: int = NAB_WINDOW, min_periods: int = 30
) -> np.ndarray:
    """|z| of each value against the rolling mean and std of the `window` values before it."""
    s = pd.Series(np.asarray(values, dtype=np.float64))
    past = s.shift(1).rolling(window, min_periods=min_periods)
    mean, std = past.mean(), past.std(ddof=0)
    z = (s - mean).abs() / std.where(std > 0)
    return z.fillna(0.0).to_numpy(np.float64)
