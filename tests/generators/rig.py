"""A simulated 1 Hz test rig, shaped like SKAB (Skoltech Anomaly Benchmark): a test dataset, not a
product feature.

A water-pump rig with 8 channels (none of the fleet's names or units; one name with spaces, as
SKAB's `Volume Flow RateRMS`), one `;`-delimited CSV per experiment with a `datetime` column
(`2020-03-01 09:00:00`), `anomaly` and `changepoint` 0/1 columns, and a separate anomaly-free
reference run without label columns (SKAB's experiments last about 20 minutes: `--hours 0.33`):

    <out>/valve1/0.csv ... <out>/valve2/0.csv ... <out>/anomaly-free/anomaly-free.csv

Each experiment runs the pump at its own operating point (channel levels differ from file to file
by more than an anomaly moves them: a model on raw values confuses "another experiment" with "an
anomaly"; per-file normalisation does not). Channels share two latent factors (pump load and
valve opening), so most anomalies break the usual relation between channels. One anomaly episode
per experiment, a few minutes long, of one of three types: a partly closed valve (flow drops, head
and vibration rise), a cavitation burst (vibration variance and acoustic level rise), a drifting
thermocouple (a sensor fault: one channel leaves the others). `changepoint` is 1 on the first and
the last row of the episode.

    python -m tests.generators.rig OUT_DIR [--hours 2] [--experiments 8] [--seed 0]
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

#: Channel name -> (unit, typical level, noise sd, load loading, valve loading).
CHANNELS: dict[str, tuple[str, float, float, float, float]] = {
    "Accelerometer1RMS": ("g", 0.21, 0.004, 0.010, -0.004),
    "Accelerometer2RMS": ("g", 0.26, 0.005, 0.012, -0.005),
    "Thermocouple": ("degC", 27.0, 0.08, 0.60, 0.0),
    "Voltage": ("V", 231.0, 0.6, -1.2, 0.0),
    # SKAB's flow column has spaces in its name; `edaml dataset init` must cope.
    "Volume Flow RateRMS": ("l/min", 125.0, 0.9, 6.0, 5.0),
    "DischargeHead": ("m", 18.0, 0.12, 0.8, -0.9),
    "MotorLoad": ("A", 2.2, 0.03, 0.20, 0.05),
    "AcousticLevel": ("dB", 71.0, 0.35, 1.5, -0.8),
}
FLOW = "Volume Flow RateRMS"
LABELS = ("anomaly", "changepoint")
EPISODE_TYPES = ("valve", "cavitation", "thermocouple_drift")


@dataclass(frozen=True)
class Experiment:
    path: Path
    rows: int
    episode: tuple[int, int] | None  # first and last row of the anomaly, inclusive
    episode_type: str | None


def _ar1(rng: np.random.Generator, n: int, phi: float, sd: float) -> np.ndarray:
    e = rng.normal(0.0, sd * np.sqrt(1 - phi**2), n)
    out = np.empty(n)
    acc = rng.normal(0.0, sd)
    for i in range(n):  # n is a few thousand: a loop is fine for a generator
        acc = phi * acc + e[i]
        out[i] = acc
    return out


def experiment_frame(
    rng: np.random.Generator,
    *,
    start: pd.Timestamp,
    rows: int,
    episode_type: str | None,
) -> tuple[pd.DataFrame, tuple[int, int] | None]:
    """One experiment's rows (channels, and label columns when `episode_type` is given)."""
    names = list(CHANNELS)
    load = _ar1(rng, rows, 0.995, 1.0)
    valve = _ar1(rng, rows, 0.998, 0.6)
    X = np.empty((rows, len(names)))
    for j, name in enumerate(names):
        _, level, sd, a_load, a_valve = CHANNELS[name]
        # The operating point of this experiment: several noise sds away from the others.
        offset = rng.normal(0.0, 12.0 * sd) + rng.normal(0.0, 0.6) * a_load
        X[:, j] = level + offset + a_load * load + a_valve * valve + _ar1(rng, rows, 0.6, sd)
    episode = None
    if episode_type is not None:
        # 3 to 10 minutes (at most a quarter of a short file)
        length = int(rng.integers(180, max(181, min(601, rows // 4))))
        first = int(rng.integers(int(rows * 0.35), rows - length - int(rows * 0.1)))
        episode = (first, first + length - 1)
        _inject(rng, X, names, episode, episode_type)
    frame = pd.DataFrame(X, columns=names)
    frame.insert(0, "datetime", pd.date_range(start, periods=rows, freq="1s"))
    if episode is not None:
        a = np.zeros(rows, dtype=np.int8)
        a[episode[0] : episode[1] + 1] = 1
        cp = np.zeros(rows, dtype=np.int8)
        cp[[episode[0], episode[1]]] = 1
        frame["anomaly"] = a
        frame["changepoint"] = cp
    return frame, episode


def _inject(
    rng: np.random.Generator,
    X: np.ndarray,
    names: list[str],
    episode: tuple[int, int],
    kind: str,
) -> None:
    first, last = episode
    n = last - first + 1
    ramp = np.minimum(np.arange(n) / 30.0, 1.0)  # 30 s onset
    col = {name: j for j, name in enumerate(names)}
    sd = {name: CHANNELS[name][2] for name in names}
    rows = slice(first, last + 1)
    if kind == "valve":
        # A partly closed valve: less flow, more head and vibration (about 3-5 noise sds).
        X[rows, col[FLOW]] -= 5.0 * sd[FLOW] * ramp
        X[rows, col["DischargeHead"]] += 4.0 * sd["DischargeHead"] * ramp
        X[rows, col["Accelerometer1RMS"]] += 3.0 * sd["Accelerometer1RMS"] * ramp
        X[rows, col["Accelerometer2RMS"]] += 3.0 * sd["Accelerometer2RMS"] * ramp
    elif kind == "cavitation":
        for name in ("Accelerometer1RMS", "Accelerometer2RMS", "AcousticLevel"):
            X[rows, col[name]] += ramp * rng.normal(2.5 * sd[name], 2.5 * sd[name], n)
        X[rows, col[FLOW]] -= 2.0 * sd[FLOW] * ramp
    elif kind == "thermocouple_drift":
        X[rows, col["Thermocouple"]] += np.linspace(0.0, 8.0 * sd["Thermocouple"], n)
        X[rows, col["MotorLoad"]] += 3.0 * sd["MotorLoad"] * ramp
    else:
        raise ValueError(f"unknown episode type {kind!r}; use one of {EPISODE_TYPES}")


def write_rig(
    out: Path, *, hours: float = 2.0, experiments: int = 8, seed: int = 0
) -> list[Experiment]:
    """Write the experiment files and the anomaly-free file under `out`; return what was written."""
    rng = np.random.default_rng(seed)
    rows = int(hours * 3600)
    if rows < 900:
        raise ValueError(f"an experiment needs at least 0.25 h (900 rows), got {hours} h")
    written: list[Experiment] = []
    free, _ = experiment_frame(
        rng, start=pd.Timestamp("2020-02-08 09:00:00"), rows=int(rows * 1.5), episode_type=None
    )
    start = pd.Timestamp("2020-03-01 09:00:00")
    for i in range(experiments):
        folder = "valve1" if i < (experiments + 1) // 2 else "valve2"
        kind = EPISODE_TYPES[i % len(EPISODE_TYPES)]
        frame, episode = experiment_frame(rng, start=start, rows=rows, episode_type=kind)
        path = out / folder / f"{i if folder == 'valve1' else i - (experiments + 1) // 2}.csv"
        _write(frame, path)
        written.append(Experiment(path, rows, episode, kind))
        start = start + pd.Timedelta(hours=hours + 1)
    path = out / "anomaly-free" / "anomaly-free.csv"  # the reference run, the earliest file
    _write(free, path)
    written.append(Experiment(path, len(free), None, None))
    return written


def _write(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, sep=";", index=False, date_format="%Y-%m-%d %H:%M:%S", float_format="%.6g")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("out", type=Path)
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--experiments", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for exp in write_rig(args.out, hours=args.hours, experiments=args.experiments, seed=args.seed):
        print(exp.path, exp.rows, exp.episode, exp.episode_type)


if __name__ == "__main__":
    main()
