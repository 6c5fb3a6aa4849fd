"""The one way a benchmark here compares things and writes its figures.

The machine is shared (2 cores, several jobs), so an absolute rate says little: compared designs
run interleaved in the same process (A, B, A, B, ... rotating who goes first each round), each
figure is the median of its rounds with the spread beside it, a comparison is the median of the
per-round ratios (A and B of one round saw about the same load), and the load average is recorded
with every round. A bench script writes only its own `## Section` of bench/RESULTS.md, with a
header line this module makes (date, machine, Python, load during the run) and the body it
measured: no figure in the body that the run did not produce.

    from _harness import Section, interleave, ratio, quick

    sec = Section("Scorer", command="make bench  (or .venv/bin/python bench/bench_scorer.py)")
    got = interleave({"scorer": run_scorer, "passthrough": run_pass}, rounds=3)  # fn() -> float
    r = ratio(got, "scorer", "passthrough")          # Stat of per-round scorer/passthrough
    sec.write(f"| scorer | {got['scorer'].fmt()} | {r.fmt('{:.2f}×')} |")

`fmt()` prints "median (min–max)". `quick()` is true under `make bench` unless
`EDAML_BENCH_FULL=1`: scripts then pick sizes that keep all of `make bench` under 20 minutes and
say so in their section (`Section.write` adds the mode to the header line).

Scripts run as `python bench/bench_x.py`, so `bench/` is on sys.path and `from _harness import`
works; from the repository root `from bench._harness import` works too.
"""

from __future__ import annotations

import gc
import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")


def load_average() -> float:
    """The 1-minute load average (what the header and each round record)."""
    return os.getloadavg()[0]


def quick() -> bool:
    """True when the bench runs in its quick mode (the default of `make bench`)."""
    if os.environ.get("EDAML_BENCH_FULL") == "1":
        return False
    return os.environ.get("EDAML_BENCH_QUICK") == "1"


@dataclass(frozen=True, slots=True)
class Stat:
    """The rounds of one measured quantity: median and spread, nothing invented."""

    values: tuple[float, ...]
    loads: tuple[float, ...] = ()

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def lo(self) -> float:
        return min(self.values)

    @property
    def hi(self) -> float:
        return max(self.values)

    def fmt(self, spec: str = "{:,.0f}") -> str:
        """'median (lo–hi)', or just the value for a single round."""
        if len(self.values) == 1:
            return spec.format(self.median)
        return f"{spec.format(self.median)} ({spec.format(self.lo)}–{spec.format(self.hi)})"


def measure(fn: Callable[[], float], rounds: int = 3) -> Stat:
    """Run `fn` `rounds` times (nothing to interleave with); each call returns its figure."""
    return interleave({"x": fn}, rounds=rounds)["x"]


def interleave(
    cases: Mapping[str, Callable[[], float]], rounds: int = 3, *, warmup: bool = False
) -> dict[str, Stat]:
    """Run every case once per round, rotating which goes first, for `rounds` rounds.

    Each callable returns its own figure (a rate, a latency, seconds: the caller's unit). With
    `warmup`, one untimed call of each first. The garbage collector is emptied before each call.
    """
    names = list(cases)
    if warmup:
        for n in names:
            cases[n]()
    got: dict[str, list[float]] = {n: [] for n in names}
    loads: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        k = r % len(names)
        for n in names[k:] + names[:k]:
            gc.collect()
            loads[n].append(load_average())
            got[n].append(float(cases[n]()))
    return {n: Stat(tuple(got[n]), tuple(loads[n])) for n in names}


def ratio(stats: Mapping[str, Stat], a: str, b: str) -> Stat:
    """Per-round a/b (both measured in the same round), as a Stat."""
    pairs = zip(stats[a].values, stats[b].values, strict=True)
    return Stat(tuple(x / y if y else float("nan") for x, y in pairs))


def cpu_and_wall(fn: Callable[[], int]) -> tuple[float, float]:
    """(items/s by this process's CPU time, items/s by the wall clock) of `fn() -> items`."""
    w, c = time.perf_counter(), time.process_time()
    n = fn()
    dw, dc = time.perf_counter() - w, time.process_time() - c
    return (n / dc if dc > 0 else float("inf"), n / dw if dw > 0 else float("inf"))


@dataclass
class Section:
    """One `## title` of RESULTS.md: records the load from creation to `write`."""

    title: str
    command: str
    started: float = field(default_factory=time.time)
    load_start: float = field(default_factory=load_average)
    notes: list[str] = field(default_factory=list)

    def header(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(self.started))
        took = time.time() - self.started
        mode = "quick mode (`make bench`)" if quick() else "full mode"
        return (
            f"Measured {when} in {took:,.0f} s, {mode}: `{self.command}`; "
            f"{os.cpu_count()} cores {platform.machine()}, Python {platform.python_version()}; "
            f"load average {self.load_start:.1f} at the start, {load_average():.1f} at the end "
            "(the machine is shared: compare ratios within this section, not across sections)."
        )

    def write(self, body: str, path: Path | None = None) -> str:
        """Replace `## title` in RESULTS.md with the header line and `body`; return the text."""
        text = self.header() + "\n\n" + body.strip()
        replace_section(self.title, text, path or RESULTS)
        return text


def table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table."""
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def replace_section(title: str, body: str, path: Path | None = None) -> None:
    """Write `## title` with `body` into RESULTS.md, replacing that section only."""
    path = path or RESULTS
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    head = f"## {title}\n"
    start = text.find(head)
    section = head + body.rstrip() + "\n\n"
    if start < 0:
        text = text.rstrip() + "\n\n" + section
    else:
        nxt = text.find("\n## ", start + len(head))
        text = text[:start] + section + (text[nxt + 1 :] if nxt >= 0 else "")
    path.write_text(text.rstrip() + "\n")
