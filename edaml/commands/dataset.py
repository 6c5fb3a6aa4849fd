"""`edaml dataset init | list | show`: dataset specs (datasets/<name>.yaml, see features/spec.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import typer
import yaml
from rich.console import Console

from edaml.commands.events import OneLineErrors, fail, spec_or_fail
from features.spec import (
    DATASETS_DIR,
    DatasetSpec,
    SpecError,
    format_duration,
    list_datasets,
    load_spec,
    parse_spec,
)
from features.spec_infer import FileSample, propose_spec
from streaming.sources.replay_csv import (
    MISSING,
    anomaly_windows,
    detect_layout,
    entity_of,
    find_windows_file,
    parse_timestamp,
    relative_paths,
)

console = Console(highlight=False, soft_wrap=True)
app = typer.Typer(help="Dataset specs: declare a sensor dataset in one YAML file.")


def _times(col: pd.Series) -> np.ndarray:
    """A time column as epoch ms (vectorised when pandas can, else cell by cell)."""
    try:
        ts = pd.to_datetime(col, utc=True, format="mixed")
        out: np.ndarray = ((ts - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(1, "ms")).to_numpy(
            np.int64
        )
        return out
    except (ValueError, TypeError):
        return np.array([parse_timestamp(str(x)) for x in col], dtype=np.int64)


def _sample(
    path: Path, entity: str, time_column: str | None, entity_column: str | None
) -> FileSample:
    layout = detect_layout(path, timestamp_column=time_column, device_id_column=entity_column)
    df = pd.read_csv(
        path,
        sep=layout.delimiter,
        dtype=str,
        keep_default_na=False,
        skipinitialspace=True,
    )
    df.columns = [c.strip() for c in df.columns]
    out = pd.DataFrame({"ts_ms": _times(df[layout.timestamp_column])})
    for c in df.columns:
        if c == layout.timestamp_column:
            continue
        if c == layout.device_id_column:
            out[c] = df[c].str.strip()
            continue
        cells = df[c].str.strip()
        out[c] = pd.to_numeric(cells.where(~cells.isin(MISSING)), errors="coerce")
    return FileSample(
        path=str(path.resolve()),
        delimiter=layout.delimiter,
        time_column=layout.timestamp_column,
        entity_column=layout.device_id_column,
        entity=entity,
        frame=out,
        sensor_names=dict(layout.sensors),
    )


def _dump(doc: dict[str, Any]) -> str:
    return yaml.safe_dump(
        doc, sort_keys=False, allow_unicode=True, default_flow_style=None, width=100
    )


@app.command(cls=OneLineErrors)
def init(
    files: Annotated[list[Path], typer.Argument(help="CSV files of the dataset")],
    name: Annotated[str, typer.Option(help="Dataset name (lower case, digits, - and _)")],
    out: Annotated[
        Path | None, typer.Option(help="Where to write the spec (default: datasets/NAME.yaml)")
    ] = None,
    timestamp_column: Annotated[
        str | None, typer.Option(help="Column holding the event time (default: detected)")
    ] = None,
    entity_column: Annotated[
        str | None,
        typer.Option(help="Column holding the entity id (default: detected, else each file)"),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing spec")] = False,
) -> None:
    """Write a spec from CSV files (the replay sniffer), print what was inferred and what to review."""
    for f in files:
        if not f.is_file():
            fail(f"no such file: {f}")
    target = out or DATASETS_DIR / f"{name}.yaml"
    if target.exists() and not force:
        fail(f"{target} exists; pass --force to overwrite it")
    rel = relative_paths(files)
    try:
        samples = [_sample(f, entity_of(rel[f]), timestamp_column, entity_column) for f in files]
        proposal = propose_spec(name, samples)
    except ValueError as exc:
        fail(str(exc))
    doc = proposal.spec
    windows = find_windows_file(files[0])
    if windows is not None and samples[0].entity_column is None:
        spans = json.loads(windows.read_text())
        if any(anomaly_windows(spans, f) for f in files):
            doc["labels"].append({"kind": "windows", "path": str(windows), "meaning": "anomaly"})
            proposal.inferred.append(f"anomaly windows (NAB style) in {windows}")
            proposal.review = [r for r in proposal.review if not r.startswith("no label column")]
    try:
        spec = parse_spec(doc, str(target))
    except SpecError as exc:  # a column name the spec cannot take, say
        fail(str(exc).splitlines()[0])
    target.parent.mkdir(parents=True, exist_ok=True)
    header = (
        f"# Dataset {name}: made by `edaml dataset init`; review the notes it printed.\n"
        "# Every key: features/spec.py; a walk-through: docs/your-data.md.\n"
    )
    target.write_text(header + _dump(doc), encoding="utf-8")
    console.print(f"wrote {target}")
    console.print("inferred:")
    for line in proposal.inferred:
        console.print(f"  - {line}", markup=False)
    fs = spec.feature_set
    console.print(
        f"  - feature windows {', '.join(w.name for w in fs.windows)} from the cadence "
        f"({len(fs.names)} features, {fs.version})",
        markup=False,
    )
    console.print("review:")
    for line in proposal.review:
        console.print(f"  - {line}", markup=False)
    console.print(f"next: edaml replay --dataset {name}")


@app.command("list", cls=OneLineErrors)
def list_() -> None:
    """The datasets under datasets/ (a broken spec is listed with its first problem)."""
    for name in list_datasets():
        try:
            s = load_spec(name)
        except SpecError as exc:
            console.print(f"{name:<20} INVALID: {str(exc).splitlines()[0]}", markup=False)
            continue
        console.print(
            f"{name:<20} {len(s.sensors):>3} sensor(s), every {format_duration(s.cadence_ms):<5} "
            f"models {', '.join(s.model_names)}; topics {s.topics().sensor_readings}",
            markup=False,
        )


def describe(s: DatasetSpec) -> list[str]:
    """What a spec declares and what is derived from it, as lines of text."""
    fs = s.feature_set
    et = s.event_time
    horizon = "off" if et.past_horizon_ms is None else format_duration(et.past_horizon_ms)
    lines = [
        f"dataset {s.name}" + (f" ({s.source})" if s.source else ""),
        f"  entity: {s.entity.key} (in CSV files: "
        + (f"column {s.entity.column})" if s.entity.column else "each file's relative path)")
        + (f"; operating limits by {s.entity.group}" if s.entity.group else ""),
        f"  cadence: {format_duration(s.cadence_ms)}; event time: future skew "
        f"{format_duration(et.future_skew_ms)}, past horizon {horizon} (behind the newest "
        "event time of the partition)",
        "  sensors:",
    ]
    for n, sen in s.sensors.items():
        lim = sen.limits
        lim_text = "" if lim is None else f", limits [{lim.low}, {lim.high}]"
        groups = f", per group: {', '.join(sen.group_limits)}" if sen.group_limits else ""
        lines.append(
            f"    {n} [{sen.unit or '-'}] range [{sen.range[0]:g}, {sen.range[1]:g}]{lim_text}{groups}"
        )
    lines += [
        f"  features: {fs.version}, {len(fs.names)} features; windows "
        + ", ".join(f"{w.name} ({'/'.join(w.aggs)})" for w in fs.windows)
        + f"; lateness {format_duration(fs.lateness_ms)}",
        "  labels: "
        + (
            "; ".join(
                f"{ls.kind} {ls.column or ls.path or ls.topic} ({ls.meaning})" for ls in s.labels
            )
            or "none"
        ),
        f"  models: {', '.join(s.model_names)} (anomaly kind {s.models.anomaly.kind}, input "
        f"{s.models.anomaly.input}, normalise {s.models.anomaly.normalise}); target alert rate "
        f"{s.models.target_alert_rate}, hold-out {s.models.holdout}",
        f"  topics: {s.topics().sensor_readings}, {s.topics().dlq}, ...",
    ]
    if s.files:
        lines.append(f"  files: {len(s.files)} ({s.files[0]}{', ...' if len(s.files) > 1 else ''})")
    return lines


@app.command(cls=OneLineErrors)
def show(name: Annotated[str, typer.Argument(help="Dataset name or spec path")]) -> None:
    """A dataset's spec and what is derived from it (feature set, models, topics)."""
    for line in describe(spec_or_fail(name)):
        console.print(line, markup=False)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="dataset")
