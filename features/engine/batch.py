"""The batch feature path: the features of every reading of a history.

By default the history is fed, device by device in arrival order, through the same compiled
kernel as the streaming path (`features.engine.state`), so both give identical values by
construction; the semantics are documented in `features.engine.online`. `engine="vectorised"` runs the
independent numpy implementation (`features.engine.vectorised`) that the parity tests compare with.
Event ids are compared exactly here (factorized), not by hash.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from features.engine.definitions import FeatureSet
from features.engine.kernel import Plan
from features.engine.pools import KernelState, ensure_compiled
from features.engine.state import compact_rows
from features.engine.vectorised import compute_features_vectorised, empty_features

__all__ = ["compute_features", "compute_features_vectorised"]

_MAX_PRESIZE = 256  # readings: a device's buffer starts no bigger (it grows if it must)


def compute_features(
    readings: pd.DataFrame,
    feature_set: FeatureSet,
    *,
    engine: Literal["kernel", "vectorised"] = "kernel",
) -> pd.DataFrame:
    """Features of every distinct reading (first arrival of an event id per device wins).

    Input columns: `event_id`, `device_id`, `ts_ms` (int64), one float64 column per sensor
    (NaN = missing), optional `seq` (arrival order within the device). Output: `event_id`,
    `device_id`, `ts_ms`, `late`, then one float64 column per `feature_set.names`, rows in
    input order.
    """
    if engine == "vectorised":
        return compute_features_vectorised(readings, feature_set)
    fs = feature_set
    plan = Plan.of(fs)
    n = len(readings)
    names = list(fs.names)
    if n == 0:
        return empty_features(names)
    dev_codes, uniq = pd.factorize(readings["device_id"], sort=False)
    seq = (
        readings["seq"].to_numpy(dtype=np.int64)
        if "seq" in readings.columns
        else np.arange(n, dtype=np.int64)
    )
    order = np.lexsort((np.arange(n), seq, dev_codes))  # arrival order, device by device
    eid_codes = pd.factorize(readings["event_id"], sort=False)[0]
    ts = readings["ts_ms"].to_numpy(dtype=np.int64)
    X = readings[list(fs.sensors)].to_numpy(dtype=np.float64)

    ensure_compiled(plan)
    st = KernelState(plan, devices=len(uniq))
    st.reserve_ids(min(n, len(uniq) * _MAX_PRESIZE))
    per_device = np.bincount(dev_codes, minlength=len(uniq))
    for k in range(len(uniq)):  # slot k is device code k
        big = int(min(per_device[k] + 1, _MAX_PRESIZE))
        st.new_slot(1 << big.bit_length(), 64 if big > 256 else 16)
    out = np.empty((n, plan.n_features))  # row r: input row r
    flags = np.zeros(n, dtype=np.uint8)  # by processing index
    st.run(
        dev_codes[order].astype(np.int64),
        ts[order],
        eid_codes[order].astype(np.int64),
        np.ascontiguousarray(X[order]),
        out,
        order.astype(np.int64),
        flags,
    )
    flag_in = np.empty(n, dtype=np.uint8)
    flag_in[order] = flags
    keep = flag_in != 1
    src = np.flatnonzero(keep)
    k = compact_rows(out, keep) if len(src) < n else n
    feats = pd.DataFrame(out[:k], columns=names, copy=False)
    feats.insert(0, "late", flag_in[src] == 2)
    feats.insert(0, "ts_ms", ts[src])
    feats.insert(0, "device_id", readings["device_id"].take(src).reset_index(drop=True))
    feats.insert(0, "event_id", readings["event_id"].take(src).reset_index(drop=True))
    return feats
