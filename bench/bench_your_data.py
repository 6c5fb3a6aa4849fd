"""Your data, measured: NAB's realKnownCause series and a SKAB-shaped 1 Hz rig, each model beside
its baseline in the same run; writes `## Your data` of bench/RESULTS.md.

- NAB (the 7 `realKnownCause` files, /work/shared/data/nab): window scores (windows detected,
  false alarms per day outside windows, median lead time from the window start to the first
  alert) of the trained anomaly model (`auto`, per-entity normalisation) beside NAB's
  windowed-Gaussian detector on the same files.
- Rig (`tests/generators/rig.py`, 8 channels at 1 Hz, one labelled episode per experiment file,
  an anomaly-free reference file): per-event F1 / FAR / MAR of the trained model beside
  IsolationForest on the raw values.

Mode: the dataset pipeline (`edaml dataset init`, `replay/train/serve --dataset`) had not landed
on main when this script was written, so it runs the same evaluation *offline* through
`features.ml` (the pure model logic training and serving share) on the same files, and says so
in the section. Protocol (both datasets): rows sorted by time; the latest 20 % of rows (by event
time, the spec's default `holdout: 0.2`) are the validation split `auto` chooses on; the model is
fitted on the normal rows of the rest (rows inside a NAB window or labelled 1 are left out of the
fit) with the threshold at a 1 % alert rate; entities first seen in validation learn their own
baseline; the reported figures score *every* row, as `serve` scores a replay of the same files,
and the validation split alone. Baselines get the same rows, the same alert rate and the same
threshold rule. Metrics and figures are logged to a real MLflow server (started here unless
MLFLOW_TRACKING_URI is set).

    .venv/bin/python bench/bench_your_data.py [--nab DIR] [--no-mlflow]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._harness import Section, load_average, table  # noqa: E402
from features.ml.detectors import make_detector  # noqa: E402
from features.ml.gaussian import windowed_gaussian_scores  # noqa: E402
from features.ml.metrics import event_metrics  # noqa: E402
from features.ml.plots import metric_bars, score_timeline  # noqa: E402
from features.ml.selection import train_anomaly  # noqa: E402
from features.ml.thresholds import threshold_for_alert_rate  # noqa: E402
from features.ml.windows import (  # noqa: E402
    Window,
    combine,
    labels_from_windows,
    load_nab_windows,
    to_ms,
    window_scores_by_entity,
    windows_from_labels,
)
from tests.generators.rig import CHANNELS, FLOW, LABELS, write_rig  # noqa: E402

NAB = Path("/work/shared/data/nab")
ALERT_RATE = 0.01
HOLDOUT = 0.2
NAB_WINDOWS_H = ("1h", "6h", "24h")
RIG_WINDOWS_S = (10, 60)
DOCS = ROOT / "docs"


# -- data -----------------------------------------------------------------------------------
def nab_frame(nab: Path) -> tuple[pd.DataFrame, dict[str, list[Window]]]:
    """The 7 realKnownCause series as one frame (entity = path under data/), and their windows."""
    windows = load_nab_windows(nab / "labels" / "combined_windows.json")
    frames = []
    for path in sorted((nab / "data" / "realKnownCause").glob("*.csv")):
        f = pd.read_csv(path)
        f["entity"] = path.relative_to(nab / "data").as_posix()
        f["ts_ms"] = to_ms(f["timestamp"])
        frames.append(f[["entity", "ts_ms", "value"]])
    df = pd.concat(frames, ignore_index=True)
    df = df.sort_values(["entity", "ts_ms"], kind="stable").reset_index(drop=True)
    df["label"] = np.concatenate(
        [
            labels_from_windows(g["ts_ms"].to_numpy(), windows.get(k, []))
            for k, g in df.groupby("entity", sort=False)
        ]
    )
    return df, {k: v for k, v in windows.items() if k in set(df["entity"])}


def nab_features(df: pd.DataFrame) -> pd.DataFrame:
    """Per entity: the value, and over trailing 1 h / 6 h / 24 h event-time windows its mean,
    std and z-score (value minus mean, over std)."""
    cols: dict[str, np.ndarray] = {"value__last": df["value"].to_numpy(np.float64)}
    for w in NAB_WINDOWS_H:
        mean, std = [], []
        for _, g in df.groupby("entity", sort=False):
            r = g.set_index(pd.to_datetime(g["ts_ms"], unit="ms"))["value"].rolling(w)
            mean.append(r.mean().to_numpy())
            std.append(r.std().to_numpy())
        m, s = np.concatenate(mean), np.concatenate(std)
        cols[f"value__mean_{w}"] = m
        cols[f"value__std_{w}"] = s
        cols[f"value__z_{w}"] = (cols["value__last"] - m) / np.where(s > 0, s, np.nan)
    return pd.DataFrame(cols)


def rig_frame(root: Path) -> pd.DataFrame:
    """Every rig file (entity = path under the root); files without labels are normal."""
    frames = []
    for path in sorted(root.rglob("*.csv")):
        f = pd.read_csv(path, sep=";")
        f["entity"] = path.relative_to(root).as_posix()
        f["ts_ms"] = to_ms(f["datetime"])
        for col in LABELS:
            if col not in f:
                f[col] = 0
        frames.append(f)
    df = pd.concat(frames, ignore_index=True)
    return df.sort_values(["entity", "ts_ms"], kind="stable").reset_index(drop=True)


def rig_features(df: pd.DataFrame) -> pd.DataFrame:
    """Per entity: each channel's value, and its mean and std over the last 10 s and 60 s."""
    names = list(CHANNELS)
    parts = [df[names].add_suffix("__last")]
    grouped = df.groupby("entity", sort=False)[names]
    for w in RIG_WINDOWS_S:
        r = grouped.rolling(w, min_periods=1)
        parts.append(r.mean().reset_index(level=0, drop=True).add_suffix(f"__mean_{w}s"))
        parts.append(r.std().reset_index(level=0, drop=True).add_suffix(f"__std_{w}s"))
    return pd.concat(parts, axis=1)


def latest_holdout(ts_ms: np.ndarray, share: float = HOLDOUT) -> np.ndarray:
    """True for the latest `share` of rows by event time (the validation split)."""
    return ts_ms > np.quantile(ts_ms, 1.0 - share)


# -- evaluation -----------------------------------------------------------------------------
@dataclass
class Outcome:
    name: str
    chosen: str = ""
    reason: str = ""
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    load: tuple[float, float] = (0.0, 0.0)


def _train(
    X: pd.DataFrame, ent: np.ndarray, y: np.ndarray, val: np.ndarray, labels: list[str]
) -> tuple[Any, str, str]:
    choice = train_anomaly(
        "auto",
        X[~val].to_numpy(),
        X[val].to_numpy(),
        y[val],
        feature_names=list(X.columns),
        label_columns=labels,
        entities_train=ent[~val],
        entities_val=ent[val],
        labels_train=y[~val],
        alert_rate=ALERT_RATE,
        normalise="entity",
    )
    return choice.best.model, choice.best.kind, choice.reason


def run_nab(nab: Path) -> Outcome:
    t0, l0 = time.perf_counter(), load_average()
    df, windows = nab_frame(nab)
    X = nab_features(df)
    ent, ts, y = df["entity"].to_numpy(), df["ts_ms"].to_numpy(), df["label"].to_numpy()
    val = latest_holdout(ts)
    model, kind, reason = _train(X, ent, y, val, ["label"])
    flags = model.anomaly_score(X.to_numpy(), ent) >= model.threshold_
    gauss = np.concatenate(
        [
            windowed_gaussian_scores(g["value"].to_numpy())
            for _, g in df.groupby("entity", sort=False)
        ]
    )
    g_flags = gauss >= threshold_for_alert_rate(gauss[~val & (y == 0)], ALERT_RATE)
    out = Outcome("nab", kind, reason)
    for name, f in (("model", flags), ("windowed_gaussian", g_flags)):
        for split, rows in (("all", np.ones(len(y), bool)), ("validation", val)):
            ws = combine(window_scores_by_entity(ent[rows], ts[rows], f[rows], windows).values())
            out.metrics[f"{name}.{split}"] = {
                **ws.as_dict(),
                **{
                    k: v
                    for k, v in event_metrics(y[rows], f[rows]).as_dict().items()
                    if k in ("precision", "recall", "f1")
                },
            }
    key = "realKnownCause/machine_temperature_system_failure.csv"
    rows = ent == key
    scores = model.anomaly_score(X.to_numpy()[rows], ent[rows])
    out.figures["nab_machine_temperature.png"] = score_timeline(
        ts[rows],
        scores,
        model.threshold_,
        windows=windows[key],
        values=df["value"].to_numpy()[rows],
        title=f"NAB machine temperature: {kind} score (per-entity), NAB windows shaded",
    )
    out.seconds, out.load = time.perf_counter() - t0, (l0, load_average())
    return out


def run_rig(workdir: Path) -> Outcome:
    t0, l0 = time.perf_counter(), load_average()
    root = workdir / "rig"
    write_rig(root, hours=2.0, experiments=8, seed=0)
    df = rig_frame(root)
    X = rig_features(df)
    ent, ts, y = df["entity"].to_numpy(), df["ts_ms"].to_numpy(), df["anomaly"].to_numpy(int)
    val = latest_holdout(ts)
    model, kind, reason = _train(X, ent, y, val, list(LABELS))
    flags = model.anomaly_score(X.to_numpy(), ent) >= model.threshold_
    raw = df[list(CHANNELS)].to_numpy()
    iforest = make_detector("isolation_forest", normalise="none", alert_rate=ALERT_RATE)
    iforest.fit(raw[~val & (y == 0)])
    i_flags = iforest.anomaly_score(raw) >= iforest.threshold_
    out = Outcome("rig", kind, reason)
    for name, f in (("model", flags), ("isolation_forest_raw", i_flags)):
        for split, rows in (("all", np.ones(len(y), bool)), ("validation", val)):
            m = event_metrics(y[rows], f[rows]).as_dict()
            ws = combine(
                window_scores_by_entity(
                    ent[rows],
                    ts[rows],
                    f[rows],
                    {k: windows_from_labels(ts[ent == k], y[ent == k]) for k in set(ent[rows])},
                ).values()
            )
            out.metrics[f"{name}.{split}"] = {
                **{k: m[k] for k in ("precision", "recall", "f1", "far", "mar")},
                "episodes_detected": float(ws.detected),
                "episodes": float(ws.windows),
            }
    key = sorted(set(ent[val]) - {"anomaly-free/anomaly-free.csv"})[0]
    rows = ent == key
    out.figures["rig_episode.png"] = score_timeline(
        ts[rows],
        model.anomaly_score(X.to_numpy()[rows], ent[rows]),
        model.threshold_,
        windows=windows_from_labels(ts[rows], y[rows]),
        values=df[FLOW].to_numpy()[rows],
        title=f"Rig {key}: {kind} score, labelled episode shaded (top: {FLOW})",
    )
    out.figures["rig_metrics.png"] = metric_bars(
        {
            f"{kind} (per-file, 10/60 s windows)": out.metrics["model.all"],
            "IsolationForest on raw values": out.metrics["isolation_forest_raw.all"],
        },
        ["f1", "far", "mar"],
        title="Rig, every row scored",
    )
    out.seconds, out.load = time.perf_counter() - t0, (l0, load_average())
    return out


# -- MLflow ---------------------------------------------------------------------------------
@contextmanager
def tracking(enabled: bool, home: Path) -> Iterator[str | None]:
    """A real MLflow server for the run (or MLFLOW_TRACKING_URI's), stopped at the end."""
    if not enabled:
        yield None
        return
    external = os.environ.get("MLFLOW_TRACKING_URI")
    if external:
        yield external
        return
    from edaml.services import free_port
    from edaml.settings import Settings
    from edaml.stack import mlflow_server

    port = int(os.environ.get("EDAML_MLFLOW_PORT") or free_port())
    svc = mlflow_server(Settings(home=home, mlflow_port=port, mlflow_tracking_uri=None))
    svc.start()
    try:
        svc.wait_healthy()
        yield svc.address
    finally:
        svc.stop()


def log_to_mlflow(uri: str, outcome: Outcome) -> str:
    import mlflow

    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("bench-your-data")
    with mlflow.start_run(run_name=outcome.name) as run:
        mlflow.log_params(
            {
                "chosen_kind": outcome.chosen,
                "alert_rate": ALERT_RATE,
                "holdout": HOLDOUT,
                "mode": "offline features.ml",
            }
        )
        for prefix, values in outcome.metrics.items():
            mlflow.log_metrics({f"{prefix}.{k}": v for k, v in values.items() if np.isfinite(v)})
        for name, fig in outcome.figures.items():
            mlflow.log_figure(fig, f"figures/{name}")
        return str(run.info.run_id)


# -- report ---------------------------------------------------------------------------------
def _f(v: float, spec: str = "{:.2f}") -> str:
    return "n/a" if not np.isfinite(v) else spec.format(v)


def report(nab: Outcome | None, rig: Outcome, runs: dict[str, str], server: str) -> str:
    lines = [
        "**Mode: offline.** The dataset pipeline (`edaml dataset init` → `replay --dataset` → "
        "`train --dataset` → `serve --dataset`) had not landed on main when this ran, so these "
        "figures come from the same evaluation run through `features.ml` directly on the same "
        "files (bench/bench_your_data.py docstring: protocol). They are not yet end-to-end "
        "figures of the five commands.",
        "",
    ]
    if nab is not None:
        rows = []
        for name, label in (
            ("model", f"anomaly model (`auto` → {nab.chosen}, per-entity)"),
            ("windowed_gaussian", "windowed Gaussian (NAB baseline)"),
        ):
            for split in ("all", "validation"):
                m = nab.metrics[f"{name}.{split}"]
                rows.append(
                    [
                        label,
                        "every row" if split == "all" else "latest 20 %",
                        f"{m['windows_detected']:.0f} / {m['windows']:.0f}",
                        _f(m["false_alarms_per_day"]),
                        _f(m["median_lead_time_h"], "{:.1f}"),
                        _f(m["f1"]),
                    ]
                )
        lines += [
            f"### NAB realKnownCause (7 files, {nab.seconds:.0f} s, load {nab.load[0]:.1f} → "
            f"{nab.load[1]:.1f})",
            "",
            table(
                [
                    "detector",
                    "rows scored",
                    "windows detected",
                    "false alarms / day",
                    "median lead time from window start (h)",
                    "per-row F1",
                ],
                rows,
            ),
            "",
            f"`auto` chose on validation: {nab.reason}. Features: value and its 1 h / 6 h / 24 h "
            "mean, std and z-score per entity; alert rate 1 % of normal training rows for both.",
            "",
        ]
    rows = []
    for name, label in (
        ("model", f"anomaly model (`auto` → {rig.chosen}, per-file, 10/60 s windows)"),
        ("isolation_forest_raw", "IsolationForest on raw values"),
    ):
        for split in ("all", "validation"):
            m = rig.metrics[f"{name}.{split}"]
            rows.append(
                [
                    label,
                    "every row" if split == "all" else "latest 20 %",
                    _f(m["f1"]),
                    _f(100 * m["far"], "{:.1f} %"),
                    _f(100 * m["mar"], "{:.1f} %"),
                    f"{m['episodes_detected']:.0f} / {m['episodes']:.0f}",
                ]
            )
    lines += [
        f"### 1 Hz rig (8 experiments × 2 h + a 3 h anomaly-free file, {rig.seconds:.0f} s, "
        f"load {rig.load[0]:.1f} → {rig.load[1]:.1f})",
        "",
        table(["detector", "rows scored", "F1", "FAR", "MAR", "episodes detected"], rows),
        "",
        f"`auto` chose on validation: {rig.reason}.",
    ]
    if runs:
        lines += [
            "",
            f"MLflow runs (experiment `bench-your-data`, {server}): "
            + ", ".join(f"{k} `{v}`" for k, v in runs.items())
            + ".",
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description="Your data: NAB and the rig, model vs baseline")
    parser.add_argument("--nab", type=Path, default=NAB)
    parser.add_argument("--no-mlflow", action="store_true")
    parser.add_argument("--figures", type=Path, default=DOCS, help="where the PNGs are written")
    args = parser.parse_args()
    sec = Section("Your data", command="python bench/bench_your_data.py")
    with tempfile.TemporaryDirectory(prefix="edaml-your-data-") as tmp:
        work = Path(tmp)
        nab = run_nab(args.nab) if (args.nab / "data" / "realKnownCause").is_dir() else None
        rig = run_rig(work)
        runs: dict[str, str] = {}
        home = Path(os.environ.get("EDAML_HOME") or work / "home")
        server = (
            f"server {os.environ['MLFLOW_TRACKING_URI']}"
            if os.environ.get("MLFLOW_TRACKING_URI")
            else f"a server started for this run, store under {home}"
        )
        with tracking(not args.no_mlflow, home) as uri:
            if uri:
                for o in (nab, rig):
                    if o is not None:
                        runs[o.name] = log_to_mlflow(uri, o)
    for o in (nab, rig):
        if o is None:
            continue
        for name, fig in o.figures.items():
            fig.savefig(args.figures / f"your-data-{name}", dpi=80)
    print(sec.write(report(nab, rig, runs, server)))


if __name__ == "__main__":
    main()
