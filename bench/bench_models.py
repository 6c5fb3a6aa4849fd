"""Model quality on the simulator's hold-out, next to a static per-sensor threshold baseline.

Simulates a fleet (no Kafka: the history the retrain job would replay), then runs the same
training code as the Dagster assets (`orchestration.defs.training`): features from the batch
path, failure labels from maintenance events, a time split with the latest days held out, both
models with their calibrated thresholds, and the rule baseline computed on the same rows.

Each model is trained twice in the same run on the same hold-out: with the embargo the retrain
job uses (training ends one labels horizon before the hold-out, so no training label is decided
by a failure inside it) and without it (the optimistic figures of earlier runs). The fits are
interleaved (A B B A with `--repeats 2`) and the load average is recorded.
Writes section `## Models` of bench/RESULTS.md.

    .venv/bin/python bench/bench_models.py [--devices 1000] [--days 14] [--interval-s 600] [--holdout-days 3]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from features.engine.batch import compute_features
from features.ml import reference
from features.ml.scoring import scores
from features.spec import load_spec
from orchestration.defs.settings import TrainingSettings
from orchestration.defs.training import build
from orchestration.defs.training.evaluation import evaluate
from orchestration.defs.training.fit import fit_anomaly, fit_failure
from orchestration.defs.training.models import failure_scores
from orchestration.defs.training.params import resolve
from orchestration.defs.training.plan import LABEL
from streaming.sources.sim import SimConfig, Simulator, labels_table

FLEET = load_spec()  # the simulated fleet's spec (datasets/iot-fleet.yaml)
SENSORS = FLEET.sensor_names

FEATURE_SET = load_spec().feature_set  # the fleet's

log = logging.getLogger("bench_models")
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


def simulate(
    devices: int, days: int, interval_s: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Readings (with seq), maintenance events and ground-truth fault intervals."""
    start = (int(time.time() * 1000) // DAY_MS - days) * DAY_MS
    sim = Simulator(SimConfig(devices=devices, seed=seed, start_ms=start, interval_s=interval_s))
    steps = int(days * 86400 / interval_s)
    ts, vals, ids, dev, maint = [], [], [], [], []
    dev_ids = np.asarray(sim.fleet.device_ids)
    for _ in range(steps):
        s = sim.step()
        keep = s.running
        ts.append(s.ts_ms[keep])
        vals.append(s.values[keep])
        ids.append(np.asarray(s.event_ids.to_pylist(), dtype=object)[keep])
        dev.append(dev_ids[keep])
        maint.extend(s.maintenance)
    values = np.concatenate(vals)
    readings = pd.DataFrame(
        {
            "event_id": np.concatenate(ids),
            "device_id": np.concatenate(dev),
            "ts_ms": np.concatenate(ts).astype(np.int64),
            **{s: values[:, i] for i, s in enumerate(SENSORS)},
        }
    )
    readings["seq"] = np.arange(len(readings), dtype=np.int64)
    m = pd.DataFrame(
        [(e.event_id, e.device_id, e.ts_ms, e.kind, e.fault_type) for e in maint],
        columns=["event_id", "device_id", "ts_ms", "kind", "fault_type"],
    )
    truth = labels_table(sim.labels()).to_pandas()
    return readings, m, truth


METRICS = (
    "base_rate",
    "pr_auc",
    "alert_precision",
    "precision",
    "recall",
    "failure_recall_1h",
    "false_alarms_per_device_day",
    "lead_time_median_h",
)


def _anomaly_scores(model: Any, X: pd.DataFrame) -> np.ndarray:
    return scores(model, X.to_numpy(np.float64), "anomaly")


def fit_and_score(
    labelled: pd.DataFrame,
    days: list[str],
    holdout_days: int,
    embargo_ms: int,
    maint: pd.DataFrame,
    horizon: int,
) -> tuple[dict[str, tuple[dict[str, float], dict[str, float]]], float, build.Split]:
    """Split (with `embargo_ms`), fit both models, score them and the rule baseline on the
    hold-out; returns the metrics by kind, the fit time and the split."""
    split = build.split_by_days(labelled, days, holdout_days, embargo_ms=embargo_ms)
    names = list(FEATURE_SET.names)
    t = time.perf_counter()
    train = build.sample_rows(split.train, "y_failure", 150_000, 7)
    an = fit_anomaly(train, names, resolve(FLEET, TrainingSettings()), seed=7)
    calib = int(split.train["ts_ms"].max()) // DAY_MS * DAY_MS - 2 * DAY_MS
    fr = fit_failure(train, names, target_precision=0.2, seed=7, calibration_start_ms=calib)
    seconds = time.perf_counter() - t
    hold = split.holdout
    fails = maint.loc[maint["kind"] == "failure", ["device_id", "ts_ms"]]
    raw_train = split.train[[f"raw_{s}" for s in SENSORS]].rename(columns=lambda c: c[4:])
    raw_hold = hold[[f"raw_{s}" for s in SENSORS]].rename(columns=lambda c: c[4:])
    rules = reference.rule_scores(raw_hold, reference.sensor_limits(raw_train))
    common: dict[str, Any] = dict(
        device_ids=hold["device_id"].astype(str).to_numpy(),
        ts_ms=hold["ts_ms"].to_numpy(),
        failures=fails,
        horizon_ms=horizon,
    )
    out = {}
    for kind, model, scorer, thr in (
        ("anomaly", an.model, _anomaly_scores, an.threshold),
        ("failure-risk", fr.model, failure_scores, fr.threshold),
    ):
        y = hold[LABEL[kind]].to_numpy()
        out[kind] = (
            evaluate(y=y, scores=scorer(model, hold[names]), threshold=thr, **common),
            evaluate(y=y, scores=rules, threshold=0.0, **common),
        )
    return out, seconds, split


def main() -> None:
    from bench._harness import Section, quick

    small = quick()
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=300 if small else 1000)
    ap.add_argument("--days", type=int, default=10 if small else 14)
    ap.add_argument("--holdout-days", type=int, default=2 if small else 3)
    ap.add_argument("--interval-s", type=float, default=600.0)
    ap.add_argument("--horizon-h", type=float, default=6.0)
    ap.add_argument("--repeats", type=int, default=2, help="fits per variant, interleaved ABBA")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    section = Section("Models", command="make bench  (or .venv/bin/python bench/bench_models.py)")
    loads: list[float] = []
    t0 = time.perf_counter()
    readings, maint, truth = simulate(args.devices, args.days, args.interval_s, args.seed)
    t_sim = time.perf_counter() - t0
    t1 = time.perf_counter()
    feats = build.with_sensors(compute_features(readings, FEATURE_SET), readings, SENSORS)
    t_feat = time.perf_counter() - t1
    horizon = int(args.horizon_h * HOUR_MS)
    labelled = build.label(feats, maint, truth, horizon)
    day0 = int(readings["ts_ms"].min()) // DAY_MS * DAY_MS
    days = [
        datetime.fromtimestamp((day0 + i * DAY_MS) / 1000, UTC).strftime("%Y-%m-%d")
        for i in range(args.days)
    ]
    variants = {"none": 0, "embargo": horizon}
    order = [
        v
        for r in range(args.repeats)
        for v in (("none", "embargo") if r % 2 == 0 else ("embargo", "none"))
    ]
    results: dict[str, dict[str, tuple[dict[str, float], dict[str, float]]]] = {}
    fit_s: dict[str, list[float]] = {v: [] for v in variants}
    splits: dict[str, build.Split] = {}
    for v in order:
        log.info("fitting both models, embargo %s", v)
        results[v], seconds, splits[v] = fit_and_score(
            labelled, days, args.holdout_days, variants[v], maint, horizon
        )
        fit_s[v].append(seconds)
        loads.append(os.getloadavg()[0])
    hold = splits["embargo"].holdout
    fails = maint.loc[maint["kind"] == "failure", ["device_id", "ts_ms"]]
    n_fail_hold = int(
        ((fails["ts_ms"] >= hold["ts_ms"].min()) & (fails["ts_ms"] <= hold["ts_ms"].max())).sum()
    )
    h = f"{args.horizon_h:g} h"
    lines = [
        f"Simulator: {args.devices} devices, {args.days} days, a reading every {args.interval_s:g} s "
        f"(seed {args.seed}): {len(readings):,} readings, {int((maint['kind'] == 'failure').sum())} failures, "
        f"{len(truth)} ground-truth faults. Train on the first {args.days - args.holdout_days} days, hold out the "
        f"last {args.holdout_days} ({len(hold):,} readings, {n_fail_hold} failures). Horizon {h}.",
        f"Embargo: the retrain job ends training one labels horizon ({h}) before the hold-out "
        f"({splits['embargo'].embargoed_rows:,} training rows left out), so no training label is "
        "decided by a failure inside the hold-out; `no embargo` trains up to the cut (the figures "
        "of earlier runs, optimistic). Both variants are fitted in this run on the same hold-out.",
        "Baseline: static per-sensor limits (0.1 % / 99.9 % quantiles of the training readings), flagged "
        "when any sensor is outside; the same limits are the models' fallback rules.",
        "",
        f"| model | labels | metric | embargo {h} | no embargo | rule baseline | embargo / rules |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind in ("anomaly", "failure-risk"):
        m, r = results["embargo"][kind]
        m0 = results["none"][kind][0]
        for metric in METRICS:
            ratio = m[metric] / r[metric] if r[metric] else float("inf")
            lines.append(
                f"| {'iot-' + kind} | {LABEL[kind]} | {metric} | {m[metric]:.3f} | "
                f"{m0[metric]:.3f} | {r[metric]:.3f} | {ratio:.2f}x |"
            )
    med = {v: float(np.median(s)) for v, s in fit_s.items()}
    lines += [
        "",
        f"failure_recall_1h: share of hold-out failures with an alert 1 h to {h} before them. "
        f"precision/recall: per reading against the labels column. Timings: simulate {t_sim:.1f}s, "
        f"features {t_feat:.1f}s, fit both (median of {args.repeats}, interleaved) "
        f"{med['embargo']:.1f}s with embargo, {med['none']:.1f}s without "
        f"(ratio {med['embargo'] / med['none']:.2f}); load average after each fit: "
        + ", ".join(f"{x:.1f}" for x in loads)
        + ".",
    ]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        section.write(body)


if __name__ == "__main__":
    main()
