"""The 1 Hz rig generator: SKAB's shape, and per-file models beat IsolationForest on raw values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from features.ml.metrics import event_metrics
from features.ml.selection import fit_detector
from tests.generators.rig import CHANNELS, write_rig

FLEET_NAMES = {"temperature", "vibration", "pressure", "current", "rpm"}


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep=";", parse_dates=["datetime"])


def test_rig_files_have_skab_shape(tmp_path: Path) -> None:
    written = write_rig(tmp_path, hours=0.25, experiments=3, seed=1)
    assert [e.path.relative_to(tmp_path).as_posix() for e in written] == [
        "valve1/0.csv",
        "valve1/1.csv",
        "valve2/0.csv",
        "anomaly-free/anomaly-free.csv",
    ]
    assert len(CHANNELS) == 8
    assert not {c.lower() for c in CHANNELS} & FLEET_NAMES
    assert not {unit for unit, *_ in CHANNELS.values()} & {"°C", "mm/s", "bar", "rpm"}
    for exp in written[:-1]:
        frame = _read(exp.path)
        assert list(frame.columns) == ["datetime", *CHANNELS, "anomaly", "changepoint"]
        assert (frame["datetime"].diff().dropna() == pd.Timedelta(seconds=1)).all()
        assert exp.episode is not None
        first, last = exp.episode
        rows = np.flatnonzero(frame["anomaly"].to_numpy())
        assert rows[0] == first and rows[-1] == last and len(rows) == last - first + 1
        assert 180 <= len(rows) <= 600  # one episode of 3 to 10 minutes
        assert np.flatnonzero(frame["changepoint"].to_numpy()).tolist() == [first, last]
    free = _read(written[-1].path)
    assert list(free.columns) == ["datetime", *CHANNELS]
    assert written[0].path.read_text().splitlines()[0].count(";") == 10


def test_per_file_models_beat_isolation_forest_on_raw_values(tmp_path: Path) -> None:
    written = write_rig(tmp_path, hours=0.75, experiments=4, seed=2)
    frames = []
    for exp in written:
        f = _read(exp.path)
        f["entity"] = exp.path.relative_to(tmp_path).as_posix()
        frames.append(f)
    data = pd.concat(frames, ignore_index=True).fillna({"anomaly": 0})
    X = data[list(CHANNELS)].to_numpy()
    y = data["anomaly"].to_numpy(int)
    ent = data["entity"].to_numpy()
    f1 = {}
    for name, kind, norm in [("raw_iforest", "isolation_forest", "none"), ("pca", "pca", "entity")]:
        model = fit_detector(kind, X, entities=ent, labels=y, normalise=norm, alert_rate=0.01)
        f1[name] = event_metrics(y, model.anomaly_score(X, ent) >= model.threshold_).f1
    assert f1["pca"] > f1["raw_iforest"] + 0.2, f1
