"""Great Expectations 1.x suites for replayed history, run on pandas frames in memory."""

from __future__ import annotations

import functools
import logging
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import pandas as pd

from features.readings import SENSORS

if TYPE_CHECKING:
    import great_expectations as gx

log = logging.getLogger(__name__)

#: Physically plausible value ranges per sensor; a value outside is a broken sensor or pipe.
SENSOR_RANGES: Final[dict[str, tuple[float, float]]] = {
    "temperature": (-50.0, 250.0),
    "vibration": (0.0, 100.0),
    "pressure": (0.0, 100.0),
    "current": (0.0, 1000.0),
    "rpm": (0.0, 20000.0),
}

#: Numeric columns and their dtype; the id columns are strings (checked by their lengths).
READING_TYPES: Final[dict[str, list[str]]] = {
    "ts_ms": ["int64"],
    **{s: ["float64"] for s in SENSORS},
}
ID_COLUMNS: Final[tuple[str, ...]] = ("event_id", "device_id")


@dataclass(frozen=True, slots=True)
class Outcome:
    """One expectation's result, reduced to what a check shows."""

    expectation: str
    column: str | None
    success: bool
    details: dict[str, Any] = field(default_factory=dict)


@functools.cache
def _context() -> gx.data_context.AbstractDataContext:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    return ctx


def run_suite(df: pd.DataFrame, expectations: list[Any], *, name: str) -> list[Outcome]:
    """Validate `df` against a fresh suite of `expectations`; one Outcome per expectation."""
    import great_expectations as gx

    ctx = _context()
    tag = f"{name}-{uuid.uuid4().hex[:8]}"
    source = ctx.data_sources.add_pandas(f"src-{tag}")
    batch_def = source.add_dataframe_asset(f"asset-{tag}").add_batch_definition_whole_dataframe(
        "whole"
    )
    suite = ctx.suites.add(gx.ExpectationSuite(name=f"suite-{tag}"))
    for e in expectations:
        suite.add_expectation(e)
    vd = ctx.validation_definitions.add(
        gx.ValidationDefinition(name=f"vd-{tag}", data=batch_def, suite=suite)
    )
    try:
        result = vd.run(batch_parameters={"dataframe": df})
    finally:
        ctx.validation_definitions.delete(vd.name)
        ctx.suites.delete(suite.name)
        ctx.data_sources.delete(source.name)
    outcomes: list[Outcome] = []
    for r in result.results:
        cfg = r.expectation_config
        res = r.result or {}
        details = {
            k: res[k]
            for k in ("observed_value", "unexpected_count", "unexpected_percent")
            if res.get(k) is not None
        }
        if res.get("partial_unexpected_list"):
            details["examples"] = [str(v) for v in res["partial_unexpected_list"][:5]]
        if r.exception_info and r.exception_info.get("raised_exception"):
            details["exception"] = str(r.exception_info.get("exception_message"))
        outcomes.append(
            Outcome(cfg.type, cfg.kwargs.get("column"), bool(r.success), details)  # type: ignore[union-attr]
        )
    return outcomes


def schema_expectations() -> list[Any]:
    import great_expectations as gx

    ex: list[Any] = [
        gx.expectations.ExpectTableColumnsToMatchSet(
            column_set=[*ID_COLUMNS, *READING_TYPES], exact_match=False
        )
    ]
    # GE's type list cannot name pandas 3's "str" dtype; string lengths only exist for strings.
    ex += [
        gx.expectations.ExpectColumnValueLengthsToBeBetween(column=c, min_value=1, max_value=128)
        for c in ID_COLUMNS
    ]
    ex += [
        gx.expectations.ExpectColumnValuesToBeInTypeList(column=c, type_list=t)
        for c, t in READING_TYPES.items()
    ]
    return ex


def null_expectations(max_missing: float) -> list[Any]:
    import great_expectations as gx

    ex: list[Any] = [
        gx.expectations.ExpectColumnValuesToNotBeNull(column=c)
        for c in ("event_id", "device_id", "ts_ms")
    ]
    # Sensor dropouts are legitimate (None on the wire, NaN here), but only a few of them.
    ex += [
        gx.expectations.ExpectColumnValuesToNotBeNull(column=s, mostly=1.0 - max_missing)
        for s in SENSORS
    ]
    return ex


def range_expectations(mostly: float) -> list[Any]:
    import great_expectations as gx

    return [
        gx.expectations.ExpectColumnValuesToBeBetween(
            column=s, min_value=lo, max_value=hi, mostly=mostly
        )
        for s, (lo, hi) in SENSOR_RANGES.items()
    ]


def unique_expectations() -> list[Any]:
    import great_expectations as gx

    return [gx.expectations.ExpectColumnValuesToBeUnique(column="event_id")]


def window_expectations(start_ms: int, end_ms: int, lateness_ms: int) -> list[Any]:
    import great_expectations as gx

    # Late records belong to the day they arrived in (offsets split the log), so the lower
    # bound allows for the lateness the sources may have.
    return [
        gx.expectations.ExpectColumnValuesToBeBetween(
            column="ts_ms", min_value=start_ms - lateness_ms, max_value=end_ms - 1
        )
    ]


def volume_frame(counts: dict[str, int], earlier: dict[str, int]) -> pd.DataFrame:
    """Each day's row count relative to the median of the stored days before it."""
    rows = []
    history = dict(earlier)
    for day in sorted(counts):
        before = [n for d, n in history.items() if d < day and n > 0]
        ref = float(pd.Series(before).median()) if before else float("nan")
        rows.append({"day": day, "rows": counts[day], "reference": ref})
        history[day] = counts[day]
    df = pd.DataFrame(rows, columns=["day", "rows", "reference"])
    df["ratio"] = df["rows"] / df["reference"]
    return df


def volume_expectations(low: float, high: float) -> list[Any]:
    import great_expectations as gx

    # NaN ratio (no earlier day) is null for GE, and null values are not judged.
    return [
        gx.expectations.ExpectColumnValuesToBeBetween(column="ratio", min_value=low, max_value=high)
    ]


def maintenance_expectations(start_ms: int, end_ms: int, lateness_ms: int) -> list[Any]:
    import great_expectations as gx

    return [
        *(
            gx.expectations.ExpectColumnValuesToNotBeNull(column=c)
            for c in ("event_id", "device_id", "ts_ms", "kind")
        ),
        gx.expectations.ExpectColumnValuesToBeInSet(column="kind", value_set=["failure", "repair"]),
        gx.expectations.ExpectColumnValuesToBeUnique(column="event_id"),
        *window_expectations(start_ms, end_ms, lateness_ms),
    ]
