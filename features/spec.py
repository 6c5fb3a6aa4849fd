"""The dataset spec: one YAML file per dataset (`datasets/<name>.yaml`), validated here.

API (other modules build on it; nothing below this module reads YAML):

    from features.spec import load_spec, DatasetSpec, SpecError
    spec = load_spec()                  # the default dataset, `iot-fleet`
    spec = load_spec("nab")             # datasets/nab.yaml (a name), or
    spec = load_spec("path/to/x.yaml")  # a path
    spec = DatasetSpec.from_yaml_text(text, source="x.yaml")   # or from a dict: parse_spec(d)

Everything is computed from the validated spec, once, as properties:

- `spec.sensor_names` (tuple, column order), `spec.units`, `spec.ranges` (physical range per
  sensor: a value outside is invalid, the event goes to the DLQ), `spec.scales` (integer snap
  of the feature engine), `spec.cadence_ms`.
- `spec.contract`: the reading contract of this dataset (`features.contract.ReadingContract`:
  `parse_reading`, `validate_reading`, `encode_reading`, generated for these sensor names).
- `spec.feature_set`: the `features.engine.definitions.FeatureSet` (windows, aggregates, ratios,
  lateness) and so `spec.feature_set.version`; windows default from the cadence.
- `spec.fallback_limits` (default per-sensor operating limits, `SensorLimits`) and
  `spec.limits_for(group)` (the limits of one entity group, e.g. a machine type: the group's
  overrides on top of the defaults); `spec.group_limits` maps every declared group to its limits.
- `spec.expectations`: the GE suite description (`ExpectationsSpec`: columns and dtypes, value
  ranges with `mostly`, the entity and time columns).
- `spec.topics(prefix="")`: `features.contract.topics.Topics` of this dataset (settings prefix +
  `topic_prefix`).
- `spec.anomaly_model_name`, `spec.failure_model_name` (None when no failure labels exist),
  `spec.model_names` (the registered models to train and serve).
- `spec.models` (kinds, input `features|raw`, normalisation, per-entity models, gate policy,
  target alert rate, hold-out split, training window), `spec.labels` (label sources),
  `spec.label_columns` (never features), `spec.entity` (key column, group column).
- Event-time policy of the scorer (`ServeConfig.future_skew_ms`, `.past_horizon_ms`; `edaml
  serve --dataset` passes them): `spec.event_time.future_skew_ms` (ahead of the scorer's clock)
  and `spec.event_time.past_horizon_ms` (behind the partition's newest event time, so relative
  to the data: 2014 history replays and serves; None = no limit). Defaults 1 h and 7 d.
- Models: `spec.models.anomaly.detector_kinds` (the `features.ml.detectors` kinds to fit: one,
  or all three for `auto`), `.input` (`features` | `raw`), `.normalise` (`entity` | `global` |
  `none`), `.per_entity`; `spec.models.gate`, `.target_alert_rate`, `.holdout`,
  `.training_window` (ms or None = all complete days); `spec.has_failure_labels`.
- Labels: `spec.labels` (kind `column` | `windows` | `events`, `meaning` anomaly | failure |
  changepoint, `missing` normal | unlabelled for files without the column),
  `spec.windows_file` (resolved against the spec's folder), `spec.missing_labels`.
- `spec.files` (the CSV files it was made from; `spec.resolve(path)`), `spec.source`.

Where: `datasets/` of the repository, or `EDAML_DATASETS_DIR`. Who loads: the command line
(`edaml ... --dataset NAME`), the scorer (`ServeConfig.dataset`, default the fleet) and the
Dagster definitions (`orchestration/defs/datasets.py`: every dataset under `datasets/`, each
spec passed to its assets by the model-asset factory).
`features.spec_infer.propose_spec` is the pure part of `edaml dataset init`.

A bad spec raises `SpecError` (a ValueError) whose message is one line per problem naming the
file, the key and the fix, e.g. `datasets/x.yaml: sensors.value.range: low 120 > high 80; swap
them`.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from features.ml.model_card import SensorLimits

if TYPE_CHECKING:
    from features.contract import ReadingContract
    from features.contract.topics import Topics
    from features.engine.definitions import FeatureSet, Window

#: Where dataset specs live (`datasets/<name>.yaml`), and the default dataset: the checkout's
#: folder, or in an installed wheel the copy shipped inside this package (`features/datasets`).
_CHECKOUT_DATASETS = Path(__file__).resolve().parent.parent / "datasets"
DATASETS_DIR: Final = (
    Path(os.environ["EDAML_DATASETS_DIR"])
    if os.environ.get("EDAML_DATASETS_DIR")
    else _CHECKOUT_DATASETS
    if _CHECKOUT_DATASETS.is_dir()
    else Path(__file__).resolve().parent / "datasets"
)
DEFAULT_DATASET: Final = "iot-fleet"

NAME_PATTERN: Final = r"^[a-z0-9][a-z0-9_-]{0,47}$"
SENSOR_PATTERN: Final = r"^[A-Za-z0-9_][A-Za-z0-9_.:\-]{0,63}$"


class SpecError(ValueError):
    """A dataset spec that cannot be used: one line per problem, `file: key: what; fix`."""


# ── durations ────────────────────────────────────────────────────────────────────────────────

_UNIT_MS: Final = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_DURATION_RE: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")


def parse_duration(value: object) -> int:
    """ "90s", "5m", "1.5h", "7d" (or a number of seconds) to milliseconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 60s, 5m, 1h or 7d")
    if isinstance(value, int | float):
        ms = round(float(value) * 1000)
    elif isinstance(value, str) and (m := _DURATION_RE.match(value)):
        ms = round(float(m[1]) * _UNIT_MS[m[2]])
    else:
        raise ValueError(f"{value!r} is not a duration; write it like 60s, 5m, 1h or 7d")
    if ms <= 0:
        raise ValueError(f"{value!r} must be positive; write it like 60s, 5m, 1h or 7d")
    return ms


def format_duration(ms: int) -> str:
    """The shortest exact spelling of a duration: `24h` up to two days, then days (`7d`)."""
    if ms % 3_600_000 == 0 and ms <= 48 * 3_600_000:
        return f"{ms // 3_600_000}h"
    for unit in ("d", "h", "m", "s"):
        if ms % _UNIT_MS[unit] == 0:
            return f"{ms // _UNIT_MS[unit]}{unit}"
    return f"{ms}ms"


Duration = Annotated[int, BeforeValidator(parse_duration)]

#: Window lengths a default feature set rounds up to.
_NICE_MS: Final = tuple(
    parse_duration(d)
    for d in (
        [
            "1s",
            "2s",
            "5s",
            "10s",
            "15s",
            "30s",
            "1m",
            "2m",
            "5m",
            "10m",
            "15m",
            "30m",
            "1h",
            "2h",
            "3h",
            "6h",
            "12h",
            "24h",
            "2d",
            "3d",
            "7d",
        ]
    )
)


def _nice(ms: float) -> int:
    return next((n for n in _NICE_MS if n >= ms), _NICE_MS[-1])


# ── the spec ─────────────────────────────────────────────────────────────────────────────────


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Limits(_Strict):
    """Operating limits of a sensor: outside them the rule fallback flags a reading."""

    low: float | None = None
    high: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Limits:
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"low {self.low:g} > high {self.high:g}; swap them")
        return self

    def as_sensor_limits(self) -> SensorLimits:
        return SensorLimits(low=self.low, high=self.high)


class Sensor(_Strict):
    unit: str = ""
    #: Physical range [low, high]: a value outside cannot be real (the reading goes to the DLQ).
    range: tuple[float, float] = (-1e15, 1e15)
    #: Operating limits for the rule fallback and reason texts (optional).
    limits: Limits | None = None
    #: Per entity group (e.g. machine type, see `entity.group`): limits replacing `limits`.
    group_limits: dict[str, Limits] = Field(default_factory=dict)
    #: Plausible values (default: `range`): the history's quality check (GE) wants nearly all
    #: values inside; a stuck or drifting sensor shows up here before it breaks the contract.
    plausible: tuple[float, float] | None = None
    #: Smallest meaningful step; values are snapped to it in window statistics.
    resolution: float | None = Field(default=None, gt=0)

    @field_validator("range", "plausible")
    @classmethod
    def _range(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is None:
            return v
        lo, hi = v
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError("range bounds must be finite numbers; write [low, high]")
        if lo > hi:
            raise ValueError(f"low {lo:g} > high {hi:g}; swap them")
        if max(abs(lo), abs(hi)) > 1e15:
            raise ValueError("bounds beyond ±1e15 are not representable; narrow the range")
        return v

    @property
    def scale(self) -> int:
        if self.resolution is not None:
            return max(1, round(1 / self.resolution))
        peak = max(abs(self.range[0]), abs(self.range[1]), 1.0)
        return int(10 ** max(0, math.floor(math.log10(1e7 / peak))))


class Entity(_Strict):
    #: Field of the reading that identifies the entity (device) an event is about.
    key: Literal["device_id"] = "device_id"
    #: CSV column holding the entity id; None: the file's path relative to the common root.
    column: str | None = None
    #: Field whose value names the entity's group, for per-group operating limits.
    group: Literal["machine_type", "site"] | None = None


class EventTime(_Strict):
    #: CSV column holding the event time (None: detected).
    column: str | None = None
    #: The scorer sends events further than this ahead of its clock to the DLQ.
    future_skew: Duration = 3_600_000
    #: ... and events further than this behind their partition's newest event time (relative to
    #: the data, so history of any era replays and serves; "off": no limit).
    past_horizon: Duration | None = 7 * 86_400_000

    @field_validator("past_horizon", mode="before")
    @classmethod
    def _off(cls, v: object) -> object:
        return None if v in ("off", "none", False) else v

    @property
    def future_skew_ms(self) -> int:
        return self.future_skew

    @property
    def past_horizon_ms(self) -> int | None:
        return self.past_horizon


WindowAggName = Literal["mean", "std", "min", "max", "slope", "bad"]
SensorAggName = Literal["last", "delta", "zscore"]


class WindowSpec(_Strict):
    name: str | None = None
    length: Duration
    aggs: tuple[WindowAggName, ...] = ("mean", "std", "min", "max", "slope")


class RatioSpec(_Strict):
    name: str
    numerator: str
    denominator: str
    source: str = "last"


class Features(_Strict):
    """The feature set; every field defaults from the cadence."""

    windows: tuple[WindowSpec, ...] | None = None
    sensor_aggs: tuple[SensorAggName, ...] = ("last", "delta", "zscore")
    #: Windows whose reading count is a feature (default: all).
    count_windows: tuple[str, ...] | None = None
    ratios: tuple[RatioSpec, ...] = ()
    #: A reading more than this behind the entity's newest event time is late (default 2 x
    #: cadence).
    lateness: Duration | None = None
    time_unit: Duration = 100


class LabelSource(_Strict):
    """Ground truth: a column of the data, a NAB-style windows file, or events on a topic."""

    kind: Literal["column", "windows", "events"]
    #: kind=column: the 0/1 (or text) column; never a feature.
    column: str | None = None
    #: kind=windows: a JSON `{"group/file.csv": [[start, end], ...]}`, relative to the spec.
    path: str | None = None
    #: kind=events: the topic's design name (maintenance events: failures and repairs).
    topic: str | None = None
    #: What these labels mean: anomalies to detect, failures to predict, or change points
    #: (kept out of features, not ground truth for either model).
    meaning: Literal["anomaly", "failure", "changepoint"] = "anomaly"
    #: Rows of files that lack the column: "normal" (clean reference runs) or "unlabelled".
    missing: Literal["normal", "unlabelled"] = "unlabelled"

    @model_validator(mode="after")
    def _needs(self) -> LabelSource:
        need = {"column": "column", "windows": "path", "events": "topic"}[self.kind]
        if getattr(self, need) is None:
            raise ValueError(f"a label source of kind {self.kind} needs `{need}`; add it")
        return self


ModelKindName = Literal["isolation_forest", "pca", "robust_z", "auto"]


class Gate(_Strict):
    """How a challenger is judged against the champion."""

    metric: str = "auto"
    #: The challenger must beat the champion by at least this (absolute, on `metric`).
    margin: float = 0.0
    #: Metric floors a challenger must reach to be promoted at all (e.g. {recall: 0.5}).
    floors: dict[str, float] = Field(default_factory=dict)


class AnomalyModel(_Strict):
    kind: ModelKindName = "isolation_forest"
    #: `features`: windowed features; `raw`: the sensor values themselves (no windows).
    input: Literal["features", "raw"] = "features"
    #: `entity`: inputs normalised per entity against its own history (a robust baseline);
    #: `global`: one baseline for all rows; `none`: as they are.
    normalise: Literal["entity", "global", "none"] = "none"
    #: One model per entity instead of one for all.
    per_entity: bool = False
    #: Registered model name (default `<dataset>.anomaly`).
    name: str | None = None

    @property
    def detector_kinds(self) -> tuple[str, ...]:
        """The `features.ml.detectors` kinds to fit (several for `auto`: the gate keeps the
        best on the validation split)."""
        if self.kind == "auto":
            return ("pca", "robust_z", "isolation_forest")
        return (self.kind,)


class FailureModel(_Strict):
    #: Train it when failure labels exist (auto), always (true: an error without them), never.
    enabled: bool | Literal["auto"] = "auto"
    horizon: Duration = 24 * 3_600_000
    name: str | None = None


class Models(_Strict):
    anomaly: AnomalyModel = AnomalyModel()
    failure_risk: FailureModel = FailureModel()
    gate: Gate = Gate()
    #: Share of training readings the anomaly threshold flags (its quantile).
    target_alert_rate: float = Field(default=0.01, gt=0, lt=0.5)
    #: Share of the training window held out (the latest part) for evaluation and the gate.
    holdout: float = Field(default=0.2, gt=0, lt=1)
    #: How much history a training run uses (None: all complete days available).
    training_window: Duration | None = None


class DatasetSpec(_Strict):
    """One dataset, as declared in `datasets/<name>.yaml` (see the module docstring)."""

    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    entity: Entity = Entity()
    event_time: EventTime = EventTime()
    sensors: dict[str, Sensor] = Field(min_length=1, max_length=64)
    #: Expected time between two readings of one entity.
    cadence: Duration
    features: Features = Features()
    labels: tuple[LabelSource, ...] = ()
    models: Models = Models()
    #: Prefix of this dataset's topics (default `<name>.`); the fleet uses "".
    topic_prefix: str | None = None
    #: The CSV files the spec was made from, for `edaml replay --dataset` without files.
    files: tuple[str, ...] = ()
    _source: Path | None = PrivateAttr(default=None)

    @field_validator("sensors")
    @classmethod
    def _sensor_names(cls, v: dict[str, Sensor]) -> dict[str, Sensor]:
        for s in v:
            if not re.match(SENSOR_PATTERN, s):
                raise ValueError(
                    f"sensor name {s!r} must be 1-64 characters [A-Za-z0-9_.:-]; rename it"
                )
        return v

    @model_validator(mode="after")
    def _consistent(self) -> DatasetSpec:
        label_cols = set(self.label_columns)
        if both := label_cols & set(self.sensors):
            raise ValueError(
                f"@sensors: {sorted(both)} is both a label column and a sensor; a label never "
                "is a feature: remove it from sensors"
            )
        if self.entity.group is None and any(s.group_limits for s in self.sensors.values()):
            raise ValueError(
                "@entity.group: sensors declare group_limits but no entity group is set; set "
                "entity.group (machine_type or site)"
            )
        for r in self.features.ratios:
            for s in (r.numerator, r.denominator):
                if s not in self.sensors:
                    raise ValueError(
                        f"@features.ratios: {r.name} uses unknown sensor {s!r}; use one of "
                        f"{', '.join(self.sensors)}"
                    )
        if self.models.failure_risk.enabled is True and not self.has_failure_labels:
            raise ValueError(
                "@models.failure_risk.enabled: true but no label source has meaning: failure; "
                "add one or set enabled: auto"
            )
        try:
            self.feature_set  # noqa: B018 - builds and checks the feature set
        except ValueError as exc:
            raise ValueError(f"@features: {exc}; adjust the windows or lateness") from None
        return self

    # ── loading ──────────────────────────────────────────────────────────────────────────────

    @classmethod
    def from_yaml_text(cls, text: str, source: str = "<spec>") -> DatasetSpec:
        return parse_spec(_load_yaml(text, source), source)

    # ── derived: sensors ─────────────────────────────────────────────────────────────────────

    @property
    def sensor_names(self) -> tuple[str, ...]:
        return tuple(self.sensors)

    @property
    def units(self) -> dict[str, str]:
        return {n: s.unit for n, s in self.sensors.items()}

    @property
    def ranges(self) -> dict[str, tuple[float, float]]:
        return {n: s.range for n, s in self.sensors.items()}

    @property
    def scales(self) -> tuple[int, ...]:
        return tuple(s.scale for s in self.sensors.values())

    @property
    def cadence_ms(self) -> int:
        return self.cadence

    @cached_property
    def contract(self) -> ReadingContract:
        from features.contract import ReadingContract

        return ReadingContract(self.ranges)

    # ── derived: features ────────────────────────────────────────────────────────────────────

    @cached_property
    def feature_set(self) -> FeatureSet:
        from features.engine.definitions import FeatureSet, Ratio, Window

        f = self.features
        windows = (
            tuple(Window(w.name or format_duration(w.length), w.length, w.aggs) for w in f.windows)
            if f.windows is not None
            else default_windows(self.cadence)
        )
        return FeatureSet(
            sensors=self.sensor_names,
            scales=self.scales,
            windows=windows,
            sensor_aggs=f.sensor_aggs,
            count_windows=(
                f.count_windows if f.count_windows is not None else tuple(w.name for w in windows)
            ),
            ratios=tuple(Ratio(r.name, r.numerator, r.denominator, r.source) for r in f.ratios),
            lateness_ms=f.lateness if f.lateness is not None else 2 * self.cadence,
            time_unit_ms=f.time_unit,
        )

    # ── derived: limits ──────────────────────────────────────────────────────────────────────

    @property
    def fallback_limits(self) -> dict[str, SensorLimits]:
        """Default operating limits per sensor (sensors without limits are left out)."""
        return {
            n: s.limits.as_sensor_limits() for n, s in self.sensors.items() if s.limits is not None
        }

    @property
    def groups(self) -> tuple[str, ...]:
        return tuple(sorted({g for s in self.sensors.values() for g in s.group_limits}))

    def limits_for(self, group: str | None) -> dict[str, SensorLimits]:
        """The operating limits of one entity group: its overrides on top of the defaults."""
        out = self.fallback_limits
        if group:
            for n, s in self.sensors.items():
                if group in s.group_limits:
                    out[n] = s.group_limits[group].as_sensor_limits()
        return out

    @property
    def group_limits(self) -> dict[str, dict[str, SensorLimits]]:
        return {g: self.limits_for(g) for g in self.groups}

    # ── derived: labels, models, topics ──────────────────────────────────────────────────────

    @property
    def label_columns(self) -> tuple[str, ...]:
        return tuple(ls.column for ls in self.labels if ls.kind == "column" and ls.column)

    @property
    def source(self) -> Path | None:
        """The file the spec was loaded from (None when built from text or a dict)."""
        return self._source

    def resolve(self, path: str) -> Path:
        """A path of the spec (label windows, files): relative ones are relative to its file."""
        p = Path(path).expanduser()
        if p.is_absolute() or self._source is None:
            return p
        return self._source.parent / p

    @property
    def windows_file(self) -> Path | None:
        """The NAB-style windows file of the first `kind: windows` label source, if any."""
        for ls in self.labels:
            if ls.kind == "windows" and ls.path:
                return self.resolve(ls.path)
        return None

    @property
    def missing_labels(self) -> Literal["normal", "unlabelled"]:
        """How rows of a file without the label column count (the first column source's)."""
        for ls in self.labels:
            if ls.kind == "column":
                return ls.missing
        return "unlabelled"

    @property
    def has_failure_labels(self) -> bool:
        return any(ls.meaning == "failure" for ls in self.labels)

    @property
    def anomaly_model_name(self) -> str:
        return self.models.anomaly.name or f"{self.name}.anomaly"

    @property
    def failure_model_name(self) -> str | None:
        fr = self.models.failure_risk
        if fr.enabled is False or not self.has_failure_labels:
            return None
        return fr.name or f"{self.name}.failure-risk"

    @property
    def model_names(self) -> tuple[str, ...]:
        fail = self.failure_model_name
        return (self.anomaly_model_name,) if fail is None else (self.anomaly_model_name, fail)

    @property
    def resolved_topic_prefix(self) -> str:
        return f"{self.name}." if self.topic_prefix is None else self.topic_prefix

    def topics(self, prefix: str = "", partitions: int = 6) -> Topics:
        """This dataset's topics: `prefix` (the deployment's, from settings) + `topic_prefix`."""
        from features.contract.topics import Topics

        return Topics(prefix=prefix + self.resolved_topic_prefix, partitions=partitions)

    @property
    def expectations(self) -> ExpectationsSpec:
        return ExpectationsSpec(
            entity_column="device_id",
            time_column="ts_ms",
            columns={"event_id": "object", "device_id": "object", "ts_ms": "int64"}
            | dict.fromkeys(self.sensors, "float64"),
            ranges={n: s.plausible or s.range for n, s in self.sensors.items()},
            mostly=1.0,
            null_mostly=0.9,
        )


@dataclass(frozen=True)
class ExpectationsSpec:
    """What the history's GE suite checks, from the spec: the columns and their dtypes, each
    sensor's plausible range (a `mostly` share of non-null values inside it), the share of
    non-null values per sensor (`null_mostly`), the entity and time columns."""

    entity_column: str
    time_column: str
    columns: dict[str, str]
    ranges: dict[str, tuple[float, float]]
    mostly: float
    null_mostly: float


def default_windows(cadence_ms: int) -> tuple[Window, ...]:
    """Three windows of about 5, 60 and 1440 readings (rounded up to a plain duration), so a
    1 Hz and a 5-minute dataset both get sensible windows; a minute's cadence gives the
    fleet's 5m / 1h / 24h."""
    from features.engine.definitions import Window, WindowAgg

    short, mid, long = (_nice(k * cadence_ms) for k in (5, 60, 1440))
    if mid <= short:
        mid = _NICE_MS[min(_NICE_MS.index(short) + 1, len(_NICE_MS) - 1)]
    long = max(long, mid)
    spans: list[tuple[int, tuple[WindowAgg, ...]]] = [
        (short, ("mean", "std", "min", "max", "slope")),
        (mid, ("mean", "std", "min", "max", "slope", "bad")),
    ]
    if long > mid:
        spans.append((long, ("mean", "std", "bad")))
    return tuple(Window(format_duration(ms), ms, aggs) for ms, aggs in spans)


# ── errors: one line per problem, file + key + fix ──────────────────────────────────────────


def _fields_at(loc: tuple[int | str, ...]) -> list[str]:
    """Known keys of the model at `loc` (for an unknown key's fix)."""
    model: Any = DatasetSpec
    for part in loc:
        fields = getattr(model, "model_fields", None)
        if fields is None or part not in fields:
            # a dict/tuple level (sensor name, list index): look through to the item model
            continue
        ann = fields[part].annotation
        model = _item_model(ann)
    fields = getattr(model, "model_fields", None)
    return sorted(fields) if fields else []


def _item_model(ann: Any) -> Any:
    from typing import get_args

    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for a in get_args(ann):
        m = _item_model(a)
        if m is not None:
            return m
    return None


def _explain(err: Any) -> str:
    loc = tuple(err["loc"])
    typ = err["type"]
    msg = str(err["msg"])
    if typ == "extra_forbidden":
        known = _fields_at(loc[:-1])
        return f"unknown key; remove it or use one of: {', '.join(known)}"
    if typ == "missing":
        return "required key is missing; add it"
    if typ == "literal_error":
        return msg.replace("Input should be", "must be") + "; use one of these"
    if typ == "string_pattern_mismatch" and loc and loc[-1] == "name":
        return "a dataset name is lower-case letters, digits, - and _ (up to 48); rename it"
    msg = msg.removeprefix("Value error, ")
    return msg if ";" in msg else f"{msg}; fix the value"


def format_errors(exc: ValidationError, source: str) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if p not in ("function-after",))
        text = _explain(err)
        if text.startswith("@"):  # a cross-field check names its own key
            where, text = text[1:].split(": ", 1)
            loc = f"{loc}.{where}" if loc else where
        lines.append(f"{source}: {loc or '(top level)'}: {text}")
    return "\n".join(lines)


def parse_spec(data: object, source: str = "<spec>") -> DatasetSpec:
    """Validate a spec document (a mapping, e.g. parsed YAML)."""
    if not isinstance(data, Mapping):
        raise SpecError(f"{source}: (top level): expected a mapping of keys; see datasets/")
    try:
        return DatasetSpec.model_validate(dict(data))
    except ValidationError as exc:
        raise SpecError(format_errors(exc, source)) from None


def _duplicate_key(node: yaml.Node | None, path: str = "") -> tuple[str, int, int] | None:
    """The first key listed twice in a mapping (PyYAML would silently keep the last one)."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(getattr(key_node, "value", ""))
            where = f"{path}.{key}" if path else key
            line = key_node.start_mark.line + 1
            if key in seen:
                return where, seen[key], line
            seen[key] = line
            if (found := _duplicate_key(value_node, where)) is not None:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            if (found := _duplicate_key(item, f"{path}.{i}" if path else str(i))) is not None:
                return found
    return None


def _load_yaml(text: str, source: str) -> object:
    try:
        dup = _duplicate_key(yaml.compose(text, Loader=yaml.SafeLoader))
        if dup is not None:
            where, first, again = dup
            raise SpecError(
                f"{source}: {where}: listed twice (lines {first} and {again}); "
                "keep one and remove or rename the other"
            )
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "(top level)"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"{source}: {where}: not valid YAML ({problem}); fix the syntax") from None


def spec_path(name_or_path: str | Path | None = None, root: Path | None = None) -> Path:
    """`datasets/<name>.yaml` for a name, or the path itself for a path."""
    name = DEFAULT_DATASET if name_or_path is None else str(name_or_path)
    if name.endswith((".yaml", ".yml")) or "/" in name:
        return Path(name)
    return (root or DATASETS_DIR) / f"{name}.yaml"


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def load_spec(name_or_path: str | Path | None = None, *, root: Path | None = None) -> DatasetSpec:
    """The validated spec of a dataset: by name (`datasets/<name>.yaml`, default `iot-fleet`)
    or by path. Raises `SpecError` (one line per problem: file, key, fix)."""
    path = spec_path(name_or_path, root)
    shown = _display(path)
    if not path.is_file():
        known = ", ".join(list_datasets(root)) or "none"
        raise SpecError(
            f"{shown}: no such dataset spec; known datasets: {known} "
            "(create one with `edaml dataset init FILE.csv --name NAME`)"
        )
    spec = DatasetSpec.from_yaml_text(path.read_text(encoding="utf-8"), shown)
    spec._source = path.resolve()
    return spec


def list_datasets(root: Path | None = None) -> list[str]:
    d = root or DATASETS_DIR
    return sorted(p.stem for p in d.glob("*.yaml")) if d.is_dir() else []
