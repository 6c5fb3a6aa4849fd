"""Great Expectations 1.x suites for replayed history, built from the dataset spec.

Every expectation that judges records has a `mostly` so that one record never fails a day:

| suite | expectation | mostly (default) | why |
|---|---|---|---|
| schema | columns, id lengths, dtypes | 1.0 | a wrong type is a broken pipe, not a bad record |
| nulls | ids and time never null | 1.0 | the decoder refuses such records already |
| nulls | sensor values present | spec `null_mostly` (0.9) | dropouts are legitimate, but rare |
| ranges | value inside the physical range | `range_mostly` (0.999) | the contract refuses worse |
| unique | event ids unique after de-duplication | 1.0 | duplicates are dropped before |
| window | event time inside the day, late readings within the declared lateness | `window_mostly` (0.999) | a handful of very late readings is normal |
| figures | per-day ratios (invalid records, conflicting duplicates, volume) | one row per day | a day's figure is one value |
"""

from __future__ import annotations

import functools
import logging
import uuid
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    import great_expectations as gx

    from features.spec import ExpectationsSpec

log = logging.getLogger(__name__)

ID_COLUMNS: tuple[str, ...] = ("event_id", "device_id")


@dataclass(frozen=True, slots=True)
class Outcome:
    """One expectation's result, reduced to what a check shows."""

    expectation: str
    column: str | None
    success: bool
    details: dict[str, Any] = field(default_factory=dict)
    #: The expectation's bounds and mostly, for the message ("expected ...").
    expected: dict[str, Any] = field(default_factory=dict)
    #: The asset check the expectation belongs to (its `meta["check"]`).
    check: str | None = None


@functools.cache
def _context() -> gx.data_context.AbstractDataContext:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    return ctx


class Suite:
    """A suite registered once in the ephemeral context and run on many frames (one per day)."""

    def __init__(self, expectations: list[Any], *, name: str) -> None:
        import great_expectations as gx

        self._ctx = _context()
        tag = f"{name}-{uuid.uuid4().hex[:8]}"
        self._source = self._ctx.data_sources.add_pandas(f"src-{tag}")
        batch_def = self._source.add_dataframe_asset(
            f"asset-{tag}"
        ).add_batch_definition_whole_dataframe("whole")
        self._suite = self._ctx.suites.add(gx.ExpectationSuite(name=f"suite-{tag}"))
        for e in expectations:
            self._suite.add_expectation(e)
        self._vd = self._ctx.validation_definitions.add(
            gx.ValidationDefinition(name=f"vd-{tag}", data=batch_def, suite=self._suite)
        )

    def run(self, df: pd.DataFrame, *, complete: bool = False) -> list[Outcome]:
        """Validate `df`; `complete`: also list the index of every failing row (`rows`)."""
        result = self._vd.run(
            batch_parameters={"dataframe": df}, result_format="COMPLETE" if complete else "SUMMARY"
        )
        return [_outcome(r) for r in result.results]

    def close(self) -> None:
        self._ctx.validation_definitions.delete(self._vd.name)
        self._ctx.suites.delete(self._suite.name)
        self._ctx.data_sources.delete(self._source.name)

    def __enter__(self) -> Suite:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _outcome(r: Any) -> Outcome:
    cfg = r.expectation_config
    res = r.result or {}
    details = {
        k: res[k]
        for k in ("observed_value", "element_count", "unexpected_count", "unexpected_percent")
        if res.get(k) is not None
    }
    if res.get("partial_unexpected_list"):
        details["examples"] = [str(v) for v in res["partial_unexpected_list"][:5]]
    if res.get("unexpected_index_list") is not None:
        details["rows"] = [int(i) for i in res["unexpected_index_list"]]
    if r.exception_info and r.exception_info.get("raised_exception"):
        details["exception"] = str(r.exception_info.get("exception_message"))
    kwargs = cfg.kwargs
    expected = {
        k: kwargs[k]
        for k in ("min_value", "max_value", "mostly", "value_set", "type_list")
        if kwargs.get(k) is not None
    }
    return Outcome(
        cfg.type,
        kwargs.get("column"),
        bool(r.success),
        details,
        expected,
        (cfg.meta or {}).get("check"),
    )


def tagged(check: str, expectations: list[Any]) -> list[Any]:
    """The expectations, each tagged with the asset check it belongs to."""
    for e in expectations:
        e.meta = {**(e.meta or {}), "check": check}
    return expectations


def run_suite(df: pd.DataFrame, expectations: list[Any], *, name: str) -> list[Outcome]:
    """Validate one frame against a fresh suite of `expectations`."""
    with Suite(expectations, name=name) as suite:
        return suite.run(df)


def schema_expectations(spec: ExpectationsSpec) -> list[Any]:
    import great_expectations as gx

    numeric = {c: t for c, t in spec.columns.items() if c not in ID_COLUMNS}
    ex: list[Any] = [
        gx.expectations.ExpectTableColumnsToMatchSet(
            column_set=list(spec.columns), exact_match=False
        )
    ]
    # GE's type list cannot name pandas 3's "str" dtype; string lengths only exist for strings.
    ex += [
        gx.expectations.ExpectColumnValueLengthsToBeBetween(column=c, min_value=1, max_value=128)
        for c in ID_COLUMNS
    ]
    ex += [
        gx.expectations.ExpectColumnValuesToBeInTypeList(column=c, type_list=[t])
        for c, t in numeric.items()
    ]
    return ex


def null_expectations(spec: ExpectationsSpec) -> list[Any]:
    import great_expectations as gx

    ex: list[Any] = [
        gx.expectations.ExpectColumnValuesToNotBeNull(column=c)
        for c in (*ID_COLUMNS, spec.time_column)
    ]
    # Sensor dropouts are legitimate (None on the wire, NaN here), but only a few of them.
    ex += [
        gx.expectations.ExpectColumnValuesToNotBeNull(column=s, mostly=spec.null_mostly)
        for s in spec.ranges
    ]
    return ex


def range_expectations(spec: ExpectationsSpec, mostly: float) -> list[Any]:
    import great_expectations as gx

    return [
        gx.expectations.ExpectColumnValuesToBeBetween(
            column=s, min_value=lo, max_value=hi, mostly=mostly
        )
        for s, (lo, hi) in spec.ranges.items()
    ]


def unique_expectations() -> list[Any]:
    import great_expectations as gx

    return [gx.expectations.ExpectColumnValuesToBeUnique(column="event_id")]


def window_expectations(
    start_ms: int, end_ms: int, lateness_ms: int, mostly: float = 1.0, column: str = "ts_ms"
) -> list[Any]:
    import great_expectations as gx

    # Late records belong to the day they arrived in (offsets split the log), so the lower
    # bound allows for the lateness the sources may have.
    return [
        gx.expectations.ExpectColumnValuesToBeBetween(
            column=column, min_value=start_ms - lateness_ms, max_value=end_ms - 1, mostly=mostly
        )
    ]


def figure_expectation(column: str, low: float | None, high: float | None) -> Any:
    """A per-day figure (one row per day) inside [low, high]."""
    import great_expectations as gx

    # A NaN figure (no earlier day to compare with) is null for GE, and nulls are not judged.
    return gx.expectations.ExpectColumnValuesToBeBetween(
        column=column, min_value=low, max_value=high
    )


def volume_frame(counts: dict[str, float], earlier: dict[str, float]) -> pd.DataFrame:
    """Each day's row count relative to the median of the stored days before it.

    `counts` and `earlier` hold full-day equivalents (rows / coverage of the day), so a partial
    first or last day is compared at its own coverage."""
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
