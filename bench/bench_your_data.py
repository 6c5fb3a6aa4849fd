"""Your data, measured through the training code path of the Dagster assets: NAB's
realKnownCause series and a SKAB-shaped 1 Hz rig, each trained model beside its baseline in the
same run; writes `## Your data` of bench/RESULTS.md.

Mode: pipeline. For each dataset the run does what the five commands do, minus the servers:
`edaml dataset init` (the CLI itself) writes the spec from the files; the files are read as
`edaml replay --dataset` reads them (`streaming.sources.replay_csv.read_rows`: the spec's layout,
contract, entities and event ids); then the training assets' own functions, with the spec's
defaults (`training/params.resolve`): `featurize` (the spec's feature set, batch path),
`spec_truth` (labels from the spec's label sources), `labelled_split` (time split, embargo),
`sample_rows`, `fit_anomaly` (the spec's kind; `auto` keeps the best validation F1), the
hold-out entities' baselines, and `evaluate` (the figures the evaluation asset logs and the
gate reads). Kafka, Dagster and MLflow registration are what the integration test
`tests/integration/orchestration/test_orch_your_data.py` runs end to end; this script measures.

Baselines, in the same run on the same rows, split and alert rate (threshold at the alert-rate
quantile of the normal training rows):
- NAB: the windowed-Gaussian detector (rolling mean/std z-score of the value per entity);
- rig: IsolationForest on the raw channel values (no windows, no normalisation).

Figures: the hold-out (the latest share of the rows, as the gate sees it) and every row (as
`serve` scores a replay of the same files). Metrics and plots go to a real MLflow server
(started here unless MLFLOW_TRACKING_URI is set).

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
from features.ml.plots import metric_bars, score_timeline  # noqa: E402
from features.ml.scoring import scores as model_scores  # noqa: E402
from features.ml.thresholds import threshold_for_alert_rate  # noqa: E402
from features.ml.windows import windows_from_labels  # noqa: E402
from features.spec import DatasetSpec, load_spec  # noqa: E402
from orchestration.defs.settings import TrainingSettings  # noqa: E402
from orchestration.defs.training import build  # noqa: E402
from orchestration.defs.training.assets import featurize, labelled_split  # noqa: E402
from orchestration.defs.training.evaluation import evaluate  # noqa: E402
from orchestration.defs.training.fit import fit_anomaly  # noqa: E402
from orchestration.defs.training.params import TrainParams, resolve  # noqa: E402
from orchestration.defs.training.truth import spec_truth  # noqa: E402
from tests.generators.rig import FLOW, write_rig  # noqa: E402

NAB = Path("/work/shared/data/nab")
DOCS = ROOT / "docs"
DAY_MS = 86_400_000


# -- the five commands' code path, minus the servers ----------------------------------------
def init_spec(files: list[Path], name: str, out: Path) -> DatasetSpec:
    """`edaml dataset init FILES --name NAME --out OUT` (the CLI, as a user runs it)."""
    from typer.testing import CliRunner

    from edaml.cli import app

    result = CliRunner().invoke(
        app, ["dataset", "init", *map(str, files), "--name", name, "--out", str(out)]
    )
    if result.exit_code != 0:
        raise SystemExit(result.output)
    return load_spec(out)


def replayed_readings(spec: DatasetSpec, files: list[Path]) -> pd.DataFrame:
    """The readings `edaml replay --dataset` produces from `files` (rows the contract refuses
    would go to the DLQ: none here), as the stored history holds them."""
    from streaming.sources.replay_csv import (
        RowOk,
        entity_of,
        layout_for_spec,
        read_rows,
        relative_paths,
    )

    rel = relative_paths(files, [spec.resolve(f) for f in spec.files])
    rows: list[dict[str, Any]] = []
    for p in files:
        for row in read_rows(
            p,
            layout_for_spec(p, spec),
            device_id=entity_of(rel[p]),
            contract=spec.contract,
            id_key=rel[p],
        ):
            if isinstance(row, RowOk):
                r = row.reading
                rows.append(
                    {
                        "event_id": r.event_id,
                        "device_id": r.device_id,
                        "ts_ms": r.ts_ms,
                        **{s: r.values.get(s) for s in spec.sensor_names},
                    }
                )
    df = pd.DataFrame(rows).sort_values("ts_ms", kind="stable", ignore_index=True)
    df["seq"] = np.arange(len(df), dtype=np.int64)
    for s in spec.sensor_names:
        df[s] = df[s].astype(np.float64)
    return df


@dataclass
class Trained:
    spec: DatasetSpec
    params: TrainParams
    table: pd.DataFrame  # every row, labelled
    holdout: np.ndarray  # bool per row of `table`
    train_normal: np.ndarray  # bool per row: training rows labelled normal (baselines fit here)
    kind: str
    reason: str
    flags: np.ndarray  # the model's alerts per row
    scores: np.ndarray
    threshold: float
    seconds: float


def train_as_the_assets_do(spec: DatasetSpec, files: list[Path]) -> Trained:
    t0 = time.perf_counter()
    params = resolve(spec, TrainingSettings())
    readings = replayed_readings(spec, files)
    table = featurize(spec, readings)
    days = sorted(
        {
            time.strftime("%Y-%m-%d", time.gmtime(t / 1000))
            for t in (readings["ts_ms"] // DAY_MS * DAY_MS).unique()
        }
    )
    maintenance = pd.DataFrame({"device_id": [], "ts_ms": [], "kind": []})
    truth = spec_truth(spec, None)
    split = labelled_split(table, days, maintenance, truth, params)
    sample = build.sample_rows(split.train, "y_anomaly", 150_000, 7)
    names = list(spec.feature_set.names)
    if params.anomaly_input == "raw":
        names = [f"{s}__last" for s in spec.sensor_names]
    fitted = fit_anomaly(sample, names, params, seed=7, label_columns=spec.label_columns)
    model = fitted.model
    hold_start = int(split.holdout["ts_ms"].min())
    labelled = build.label(table, maintenance, truth.intervals, params.horizon_ms, truth.unlabelled)
    hold = labelled["ts_ms"].to_numpy() >= hold_start
    ent = labelled["device_id"].astype(str).to_numpy()
    X = labelled[names].to_numpy(np.float64)
    if params.normalise == "entity":
        model.add_entities(X[hold], ent[hold])
    s = model_scores(model, X, "anomaly", ent if model.needs_entities else None)
    train_rows = labelled["ts_ms"].to_numpy() < hold_start - params.embargo_ms
    return Trained(
        spec,
        params,
        labelled,
        hold,
        train_rows & (labelled["y_anomaly"].to_numpy() == 0),
        fitted.algorithm,
        fitted.reason,
        s >= model.threshold_,
        s,
        float(model.threshold_),
        time.perf_counter() - t0,
    )


def figures(t: Trained, flags: np.ndarray, rows: np.ndarray) -> dict[str, float]:
    """The evaluation asset's figures of `flags` on `rows` (labelled rows only)."""
    known = rows & (t.table["y_known"].to_numpy() == 1)
    tab = t.table[known]
    return evaluate(
        y=tab["y_anomaly"].to_numpy(),
        scores=flags[known].astype(np.float64),
        threshold=0.5,
        device_ids=tab["device_id"].astype(str).to_numpy(),
        ts_ms=tab["ts_ms"].to_numpy(np.int64),
        failures=pd.DataFrame({"device_id": [], "ts_ms": []}),
        horizon_ms=t.params.horizon_ms,
    )


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
    notes: dict[str, str] = field(default_factory=dict)


def _score_all(t: Trained, out: Outcome, detectors: dict[str, np.ndarray]) -> None:
    everything = np.ones(len(t.table), dtype=bool)
    for name, flags in detectors.items():
        out.metrics[f"{name}.holdout"] = figures(t, flags, t.holdout)
        out.metrics[f"{name}.all"] = figures(t, flags, everything)


def run_nab(nab: Path, work: Path) -> Outcome:
    t0, l0 = time.perf_counter(), load_average()
    files = sorted((nab / "data" / "realKnownCause").glob("*.csv"))
    spec = init_spec(files, "nab", work / "nab.yaml")
    t = train_as_the_assets_do(spec, files)
    tab = t.table
    # The windowed-Gaussian baseline per entity on the raw value, thresholded like the model.
    gauss = np.full(len(tab), np.nan)
    for _, idx in tab.groupby("device_id", sort=False).indices.items():
        order = idx[np.argsort(tab["ts_ms"].to_numpy()[idx], kind="stable")]
        gauss[order] = windowed_gaussian_scores(tab["raw_value"].to_numpy()[order])
    g_flags = gauss >= threshold_for_alert_rate(gauss[t.train_normal], t.params.alert_rate)
    out = Outcome("nab", t.kind, t.reason)
    _score_all(t, out, {"model": t.flags, "windowed_gaussian": g_flags})
    key = "machine_temperature_system_failure"
    rows = (tab["device_id"] == key).to_numpy()
    ts = tab["ts_ms"].to_numpy()[rows]
    order = np.argsort(ts)
    out.figures["nab_machine_temperature.png"] = score_timeline(
        ts[order],
        t.scores[rows][order],
        t.threshold,
        windows=windows_from_labels(ts[order], tab["y_anomaly"].to_numpy()[rows][order]),
        values=tab["raw_value"].to_numpy()[rows][order],
        title=f"NAB machine temperature: {t.kind} score (per-entity), NAB windows shaded",
    )
    out.notes["features"] = f"{len(spec.feature_set.names)} features, windows " + ", ".join(
        w.name for w in spec.feature_set.windows
    )
    out.seconds, out.load = time.perf_counter() - t0, (l0, load_average())
    return out


def run_rig(work: Path) -> Outcome:
    t0, l0 = time.perf_counter(), load_average()
    written = write_rig(work / "rig", hours=0.33, experiments=16, seed=0)
    files = [w.path for w in written]
    spec = init_spec(files, "rig", work / "rig.yaml")
    t = train_as_the_assets_do(spec, files)
    tab = t.table
    raw_cols = [f"raw_{s}" for s in spec.sensor_names]
    raw = tab[raw_cols].to_numpy(np.float64)
    iforest = make_detector(
        "isolation_forest", normalise="none", alert_rate=t.params.alert_rate, seed=7
    )
    iforest.fit(raw[t.train_normal])
    i_flags = iforest.anomaly_score(raw) >= iforest.threshold_
    out = Outcome("rig", t.kind, t.reason)
    _score_all(t, out, {"model": t.flags, "isolation_forest_raw": i_flags})
    key = sorted(set(tab["device_id"][t.holdout]) - {"anomaly-free/anomaly-free"})[0]
    rows = (tab["device_id"] == key).to_numpy()
    ts = tab["ts_ms"].to_numpy()[rows]
    flow = next(s for s in spec.sensor_names if "flow" in s)
    out.figures["rig_episode.png"] = score_timeline(
        ts,
        t.scores[rows],
        t.threshold,
        windows=windows_from_labels(ts, tab["y_anomaly"].to_numpy()[rows]),
        values=tab[f"raw_{flow}"].to_numpy()[rows],
        title=f"Rig {key}: {t.kind} score, labelled episode shaded (top: {FLOW})",
    )
    out.figures["rig_metrics.png"] = metric_bars(
        {
            f"{t.kind} (spec defaults)": out.metrics["model.holdout"],
            "IsolationForest on raw values": out.metrics["isolation_forest_raw.holdout"],
        },
        ["f1", "far", "mar"],
        title="Rig, hold-out",
    )
    out.notes["features"] = f"{len(spec.feature_set.names)} features, windows " + ", ".join(
        w.name for w in spec.feature_set.windows
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
                "auto_reason": outcome.reason[:500],
                "mode": "pipeline (the training assets' functions, spec defaults)",
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


def _rows(o: Outcome, names: dict[str, str], cells: Any) -> list[list[str]]:
    out = []
    for name, label in names.items():
        for split, shown in (("holdout", "hold-out (latest 20 %)"), ("all", "every row")):
            out.append([label, shown, *cells(o.metrics[f"{name}.{split}"])])
    return out


def report(nab: Outcome | None, rig: Outcome, runs: dict[str, str], server: str) -> str:
    lines = [
        "**Mode: pipeline.** Each dataset goes through `edaml dataset init` (the CLI) and the "
        "training assets' own functions with the spec's defaults: the replay reader, the "
        "spec's feature set, labels from the spec's label sources, the time split, `auto` model "
        "choice, the evaluation asset's figures (bench/bench_your_data.py docstring). Kafka, "
        "Dagster, MLflow registration and the scorer run end to end in "
        "`tests/integration/orchestration/test_orch_your_data.py`.",
        "",
    ]
    if nab is not None:
        rows = _rows(
            nab,
            {
                "model": f"anomaly model (`auto` → {nab.chosen}, per-entity)",
                "windowed_gaussian": "windowed Gaussian (NAB baseline)",
            },
            lambda m: [
                f"{m['windows_detected']:.0f} / {m['windows']:.0f}",
                _f(m["window_false_alarms_per_day"]),
                _f(m["window_lead_time_median_h"], "{:.1f}"),
                _f(m["f1"]),
            ],
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
                    "false alarms / day (outside windows)",
                    "median lead time from window start (h)",
                    "per-row F1",
                ],
                rows,
            ),
            "",
            f"`auto` chose on the validation split: {nab.reason}. Spec from `dataset init`: "
            f"{nab.notes['features']}; alert rate 1 % of normal training rows for both.",
            "",
        ]
    rows = _rows(
        rig,
        {
            "model": f"anomaly model (`auto` → {rig.chosen}, per-file)",
            "isolation_forest_raw": "IsolationForest on raw values",
        },
        lambda m: [
            _f(m["f1"]),
            _f(100 * m["far"], "{:.1f} %"),
            _f(100 * m["mar"], "{:.1f} %"),
            f"{m['windows_detected']:.0f} / {m['windows']:.0f}",
        ],
    )
    lines += [
        f"### 1 Hz rig, SKAB-shaped (16 experiments × 20 min + a 30 min anomaly-free file, "
        f"{rig.seconds:.0f} s, load {rig.load[0]:.1f} → {rig.load[1]:.1f})",
        "",
        table(["detector", "rows scored", "F1", "FAR", "MAR", "episodes detected"], rows),
        "",
        f"`auto` chose on the validation split: {rig.reason}. Spec from `dataset init`: "
        f"{rig.notes['features']}.",
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
        nab = run_nab(args.nab, work) if (args.nab / "data" / "realKnownCause").is_dir() else None
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
