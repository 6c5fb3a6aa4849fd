from __future__ import annotations

import numpy as np
import pandas as pd

from orchestration.defs.training.labels import anomaly_labels, failure_labels, time_to_next_failure

H = 3600 * 1000


def _rows() -> pd.DataFrame:
    return pd.DataFrame(
        {"device_id": ["a", "a", "a", "b", "b"], "ts_ms": [0, 5 * H, 9 * H, 0, 5 * H]}
    )


def test_failure_within_horizon_is_positive_only_for_the_failing_device() -> None:
    maint = pd.DataFrame(
        {"device_id": ["a", "a"], "ts_ms": [10 * H, 11 * H], "kind": ["failure", "repair"]}
    )
    y = failure_labels(_rows(), maint, horizon_ms=6 * H)
    # a fails at 10h: rows at 5h and 9h are within 6h, the row at 0h is not; b never fails.
    assert y.tolist() == [0, 1, 1, 0, 0]
    ttf = time_to_next_failure(_rows(), maint)
    assert ttf[1] == 5 * H and np.isinf(ttf[3])


def test_repairs_are_not_failures_and_past_failures_do_not_count() -> None:
    maint = pd.DataFrame(
        {"device_id": ["a", "b"], "ts_ms": [1 * H, 6 * H], "kind": ["failure", "repair"]}
    )
    y = failure_labels(_rows(), maint, horizon_ms=6 * H)
    assert y.tolist() == [1, 0, 0, 0, 0]


def test_anomaly_labels_follow_intervals_including_ongoing_faults() -> None:
    truth = pd.DataFrame(
        {
            "device_id": ["a", "b"],
            "fault_type": ["bearing", "leak"],
            "start_ms": [4 * H, 4 * H],
            "end_ms": [6 * H, None],
            "failed": [True, False],
        }
    )
    y = anomaly_labels(_rows(), truth)
    assert y.tolist() == [0, 1, 0, 0, 1]
