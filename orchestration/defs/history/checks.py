"""Blocking Great Expectations checks on a dataset's event history, judged day by day.

Each day of a run is validated on its own and gets a verdict (`validity.json` beside its data):
valid when every ERROR-severity check passed on exactly that content. A failing day names the
figure, the expected range and what to do next, in the check's description (the Dagster UI) and
in its metadata (`edaml train` prints it). WARN-severity results (low volume, many exact
duplicates) are reported and never block.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from orchestration.defs.history import expectations as ex
from orchestration.defs.history.parquet import read_days
from orchestration.defs.history.replay import DAY_MS, day_window
from orchestration.defs.history.store import DatasetHistory

if TYPE_CHECKING:
    from features.spec import ExpectationsSpec

Severity = Literal["ERROR", "WARN"]

#: name -> (description, what to do when it fails)
CHECKS: dict[str, tuple[str, str]] = {
    "history_schema": (
        "Columns and types of the replayed readings match the dataset's contract.",
        "the producer writes another schema: check its version against the dataset spec",
    ),
    "history_nulls": (
        "Ids and timestamps are never null; sensor dropouts stay rare (spec null_mostly).",
        "a sensor reports nothing most of the time: check the source or the spec's sensors",
    ),
    "history_sensor_ranges": (
        "Sensor values stay inside their physical ranges (mostly 0.999).",
        "values outside the physical range: fix the sensor or the spec's range",
    ),
    "history_unique_event_ids": (
        "Exact duplicates are dropped and counted (a warning above 1 %); the same event id with "
        "different content is an error above 0.1 %.",
        "one event id carries different readings: the producer reuses ids; fix the source",
    ),
    "history_in_window": (
        "Event times fall inside the day (a day holds the readings of its event times, however "
        "late they arrived; mostly 0.999).",
        "readings stored under the wrong day: replay the day again",
    ),
    "history_invalid_records": (
        "Few records are refused by the contract (at most 0.1 % of the day's records).",
        "fix the source (the replay stats count the refused records by field), or the spec's "
        "ranges",
    ),
    "history_volume": (
        "The day's volume, at its coverage of the day, is in line with earlier days (warning).",
        "fewer or more readings than usual: a source was down or replayed partly",
    ),
    "maintenance_valid": (
        "Maintenance events are complete, unique and inside the day.",
        "maintenance events are incomplete: fix the field system's export",
    ),
}

#: Checks whose failure is only a warning: the day stays valid.
WARN_ONLY = frozenset({"history_volume"})


def next_step(dataset: str, day: str) -> str:
    return (
        f"training skips {day} until it is replayed again and passes "
        f"(edaml train --dataset {dataset} --end {day} --days 1)"
    )


@dataclass(frozen=True, slots=True)
class DayResult:
    """One check on one day."""

    day: str
    check: str
    passed: bool
    severity: Severity
    message: str
    outcomes: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Tolerances:
    """The tolerances in effect (from the check's config and the dataset spec)."""

    lateness_ms: int
    range_mostly: float = 0.999
    window_mostly: float = 0.999
    max_invalid_fraction: float = 0.001
    max_conflicting_fraction: float = 0.001
    warn_duplicate_fraction: float = 0.01
    volume_low: float = 0.5
    volume_high: float = 2.0
    with_maintenance: bool = True


def _pct(x: float) -> str:
    return f"{100 * x:.3g} %"


def _describe(o: ex.Outcome) -> str:
    """`temperature: 12.5 % of 1,440 values outside [-60, 400] (mostly 0.999)`."""
    d, e = o.details, o.expected
    what = o.column or "table"
    bounds = ""
    if "min_value" in e or "max_value" in e:
        bounds = f" outside [{e.get('min_value', '-inf')}, {e.get('max_value', 'inf')}]"
    elif "value_set" in e:
        bounds = f" not in {e['value_set']}"
    elif "type_list" in e:
        bounds = f" not of type {e['type_list']}"
    if "unexpected_count" in d:
        share = f"{d.get('unexpected_percent', 0):.3g} %"
        n = d.get("element_count")
        of = f" of {n:,}" if isinstance(n, int) else ""
        figure = f"{d['unexpected_count']:,} values ({share}{of}){bounds}"
    elif "observed_value" in d:
        figure = f"observed {d['observed_value']}{bounds}"
    else:
        figure = d.get("exception", o.expectation)
    mostly = f", expected at least {e['mostly']:g} inside" if "mostly" in e else ""
    return f"{what}: {figure}{mostly}"


class DayJudge:
    """The suites of one dataset, built once: one run per day over its records, one run over
    the per-day figures of all the days."""

    def __init__(self, spec: ExpectationsSpec, tol: Tolerances) -> None:
        self.tol = tol
        self.sensors = list(spec.ranges)
        self.records = ex.Suite(
            ex.tagged("history_schema", ex.schema_expectations(spec))
            + ex.tagged("history_nulls", ex.null_expectations(spec))
            + ex.tagged("history_sensor_ranges", ex.range_expectations(spec, tol.range_mostly))
            + ex.tagged("history_unique_event_ids", ex.unique_expectations())
            # `day_ms`: the event time relative to the day's start, so one suite serves all days.
            + ex.tagged(
                "history_in_window",
                ex.window_expectations(0, DAY_MS, tol.lateness_ms, tol.window_mostly, "day_ms"),
            ),
            name="records",
        )
        self.figures = ex.Suite(
            ex.tagged(
                "history_invalid_records",
                [ex.figure_expectation("invalid_fraction", 0.0, tol.max_invalid_fraction)],
            )
            + ex.tagged(
                "history_unique_event_ids",
                [ex.figure_expectation("conflicting_fraction", 0.0, tol.max_conflicting_fraction)],
            )
            + ex.tagged(
                "history_volume",
                [ex.figure_expectation("volume_ratio", tol.volume_low, tol.volume_high)],
            ),
            name="figures",
        )

    def close(self) -> None:
        self.records.close()
        self.figures.close()

    def judge(
        self, history: DatasetHistory, days: list[str], volume: pd.DataFrame, dataset: str
    ) -> dict[str, list[DayResult]]:
        """Every check's results for each stored day."""
        out: dict[str, list[DayResult]] = {d: [] for d in days}

        def add(day: str, check: str, outcomes: list[ex.Outcome]) -> None:
            failed = [o for o in outcomes if not o.success]
            text = "; ".join(_describe(o) for o in failed)
            if failed:
                text = f"{day}: {text}. Next: {CHECKS[check][1]}; " + next_step(dataset, day)
            severity: Severity = "WARN" if check in WARN_ONLY else "ERROR"
            out[day].append(
                DayResult(day, check, not failed, severity, text, [asdict(o) for o in failed])
            )

        stats = {d: history.stats(d) or {} for d in days}
        present = [d for d in days if int(stats[d].get("readings", {}).get("rows", 0)) > 0]
        for d in days:
            if d not in present:
                out[d] += [DayResult(d, c, True, "WARN", f"{d}: no readings") for c in CHECKS]
        for d in present:
            readings = read_days([history.readings_file(d)])
            readings["day_ms"] = readings["ts_ms"] - day_window(d)[0]
            by_check = _group(self.records.run(readings))
            for check in ("history_schema", "history_nulls", "history_sensor_ranges"):
                add(d, check, by_check.get(check, []))
            if self.tol.with_maintenance:
                maint = read_days([history.maintenance_file(d)])
                s, e = day_window(d)
                add(
                    d,
                    "maintenance_valid",
                    ex.run_suite(
                        maint, ex.maintenance_expectations(s, e, self.tol.lateness_ms), name="mnt"
                    )
                    if len(maint)
                    else [],
                )
            self._duplicates(d, stats[d], out)
            for check in ("history_unique_event_ids", "history_in_window"):
                add(d, check, by_check.get(check, []))
        if present:
            figures = _figures(present, stats, volume)
            by_day = _by_row(self.figures.run(figures, complete=True), present, figures)
            for d in present:
                grouped = _group(by_day[d])
                for check in (
                    "history_invalid_records",
                    "history_unique_event_ids",
                    "history_volume",
                ):
                    add(d, check, grouped.get(check, []))
        return out

    def _duplicates(self, day: str, stats: dict[str, Any], out: dict[str, list[DayResult]]) -> None:
        """A warning when many exact duplicates were dropped (a replayed file, a retry storm)."""
        r = stats.get("readings", {})
        records = max(1, int(r.get("records", 0)))
        exact = int(r.get("duplicates", {}).get("exact", 0))
        if exact / records > self.tol.warn_duplicate_fraction:
            out[day].append(
                DayResult(
                    day,
                    "history_unique_event_ids",
                    False,
                    "WARN",
                    f"{day}: {exact:,} exact duplicates dropped ({_pct(exact / records)} of "
                    f"{records:,} records, warning above {_pct(self.tol.warn_duplicate_fraction)})"
                    ": the events were written more than once; training uses each event once",
                )
            )


def _group(outcomes: list[ex.Outcome]) -> dict[str, list[ex.Outcome]]:
    out: dict[str, list[ex.Outcome]] = {}
    for o in outcomes:
        out.setdefault(o.check or "", []).append(o)
    return out


def _figures(
    days: list[str], stats: dict[str, dict[str, Any]], volume: pd.DataFrame
) -> pd.DataFrame:
    """One row per day: the share of refused records and of conflicting duplicates, and the
    volume ratio to earlier days."""
    rows = []
    ratio = dict(zip(volume["day"], volume["ratio"], strict=True))
    for d in days:
        r = stats[d].get("readings", {})
        records = max(1, int(r.get("records", 0)))
        rows.append(
            {
                "invalid_fraction": sum(r.get("invalid", {}).values()) / records,
                "conflicting_fraction": int(r.get("duplicates", {}).get("conflicting", 0))
                / records,
                "volume_ratio": ratio.get(d, float("nan")),
            }
        )
    return pd.DataFrame(rows)


def _by_row(
    outcomes: list[ex.Outcome], days: list[str], frame: pd.DataFrame
) -> dict[str, list[ex.Outcome]]:
    """Split the outcomes of a one-row-per-day frame into per-day outcomes (figure = the row's
    value, failed on the rows GE lists as unexpected)."""
    out: dict[str, list[ex.Outcome]] = {d: [] for d in days}
    for o in outcomes:
        bad = set(o.details.get("rows", []))
        for i, d in enumerate(days):
            value = frame[o.column].iloc[i] if o.column in frame else None
            figure = {"observed_value": f"{value:.4g}"} if value is not None else {}
            out[d].append(
                ex.Outcome(o.expectation, o.column, i not in bad, figure, o.expected, o.check)
            )
    return out


def full_day_rows(stats: dict[str, Any]) -> float:
    """The day's reading count scaled to a whole day (a partial day at its coverage)."""
    r = stats.get("readings", {})
    coverage = float(r.get("coverage", 1.0)) or 1.0
    return float(r.get("rows", 0)) / max(coverage, 1e-6)


def judge_days(
    history: DatasetHistory,
    days: list[str],
    spec: ExpectationsSpec,
    tol: Tolerances,
    dataset: str,
    run_id: str,
) -> dict[str, list[DayResult]]:
    """Validate each day, write its verdict, return the results by day."""
    stats = {d: history.stats(d) or {} for d in sorted({*history.stored_days(), *days})}
    counts = {d: full_day_rows(stats[d]) for d in days}
    earlier = {d: full_day_rows(s) for d, s in stats.items() if d not in counts}
    volume = ex.volume_frame(counts, earlier)
    judge = DayJudge(spec, tol)
    try:
        results = judge.judge(history, days, volume, dataset)
    finally:
        judge.close()
    for d, res in results.items():
        history.write_verdict(d, verdict(d, stats[d], res, run_id))
    return results


def verdict(
    day: str, stats: dict[str, Any], results: list[DayResult], run_id: str
) -> dict[str, Any]:
    """The day's verdict on exactly the content its stats describe."""
    errors = [r.message for r in results if not r.passed and r.severity == "ERROR"]
    warnings = [r.message for r in results if not r.passed and r.severity == "WARN"]
    return {
        "day": day,
        "digest": stats.get("readings", {}).get("digest"),
        "valid": not errors,
        "errors": errors,
        "warnings": warnings,
        "run_id": run_id,
        "checked_at_ms": int(time.time() * 1000),
    }


def by_check(results: dict[str, list[DayResult]]) -> dict[str, list[DayResult]]:
    out: dict[str, list[DayResult]] = {name: [] for name in CHECKS}
    for res in results.values():
        for r in res:
            out[r.check].append(r)
    return out


Summary = Callable[[str, list[DayResult]], tuple[bool, Severity, str]]


def summarise(name: str, results: list[DayResult]) -> tuple[bool, Severity, str]:
    """The check's outcome over the run's days: passed, severity and the failing days' lines."""
    failed = [r for r in results if not r.passed]
    if not failed:
        return True, "ERROR", f"{CHECKS[name][0]} Passed on {len({r.day for r in results})} day(s)."
    severity: Severity = "ERROR" if any(r.severity == "ERROR" for r in failed) else "WARN"
    return False, severity, "\n".join(r.message for r in failed)


def run_checks(results: dict[str, list[DayResult]]) -> Iterator[tuple[str, bool, Severity, str]]:
    for name, res in by_check(results).items():
        yield (name, *summarise(name, res))
