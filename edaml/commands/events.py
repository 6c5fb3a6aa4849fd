"""`edaml simulate`, `edaml backfill`, `edaml replay`: events into Kafka."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from typer._click.core import Context  # Typer vendors click since 0.23
from typer._click.exceptions import UsageError
from typer.core import TyperCommand

from edaml.settings import Settings
from streaming.kafka import ensure_topics
from streaming.producers import backfill as run_backfill
from streaming.producers import simulate_live
from streaming.replay import replay_csv
from streaming.topics import Topics

console = Console()
err_console = Console(stderr=True, highlight=False)


class OneLineErrors(TyperCommand):
    """Bad arguments: one line on stderr and exit status 2 (no usage box)."""

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except UsageError as exc:
            err_console.print(f"error: {exc.format_message()}", markup=False, soft_wrap=True)
            ctx.exit(2)


def _fail(message: str) -> NoReturn:
    err_console.print(f"error: {message}", markup=False, soft_wrap=True)
    raise typer.Exit(2)


def _target(bootstrap: str | None) -> tuple[str, Topics]:
    settings = Settings()
    server = bootstrap or settings.bootstrap
    ensure_topics(server, settings.topics)
    return server, settings.topics


def _progress(unit: str) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]:>12,.0f} " + unit + "/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )


def _updater(progress: Progress, task: Any) -> Callable[[int, int | None], None]:
    def update(done: int, total: int | None) -> None:
        elapsed = progress.tasks[task].elapsed or 0.0
        progress.update(task, completed=done, total=total, rate=done / elapsed if elapsed else 0.0)

    return update


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """SIGINT/SIGTERM end the run cleanly (pending records are still flushed)."""
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for s, h in old.items():
            signal.signal(s, h)


BootstrapOpt = Annotated[
    str | None,
    typer.Option(
        help="Kafka bootstrap servers (default: KAFKA_BOOTSTRAP_SERVERS or the local stack)"
    ),
]


def simulate(
    devices: Annotated[int, typer.Option(help="Simulated devices")] = 1000,
    rate: Annotated[float, typer.Option(help="Target readings per second (all devices)")] = 1000.0,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same fleet and faults)")] = 0,
    duration: Annotated[
        float | None, typer.Option(help="Seconds to run (default: until Ctrl-C)")
    ] = None,
    bootstrap: BootstrapOpt = None,
) -> None:
    """Stream simulated readings live at a target rate; event time = wall clock."""
    if devices < 1:
        _fail("--devices must be at least 1")
    if rate <= 0:
        _fail("--rate must be positive")
    if duration is not None and duration <= 0:
        _fail("--duration must be positive")
    server, topics = _target(bootstrap)
    with _stop_on_signals() as stop, _progress("events") as progress:
        task = progress.add_task("simulate", total=None, rate=0.0)
        stats = simulate_live(
            server,
            topics,
            devices=devices,
            rate=rate,
            seed=seed,
            duration_s=duration,
            stop=stop,
            progress=_updater(progress, task),
        )
    console.print(
        f"{stats.readings:,} readings and {stats.maintenance} maintenance events in "
        f"{stats.elapsed_s:.1f}s: {stats.rate:,.0f}/s (target {rate:,.0f}/s) "
        f"to {topics.sensor_readings}"
    )


def backfill(
    devices: Annotated[int, typer.Option(help="Simulated devices")] = 1000,
    days: Annotated[float, typer.Option(help="Days of history, ending now")] = 14.0,
    interval_s: Annotated[float, typer.Option(help="Seconds between readings of a device")] = 60.0,
    seed: Annotated[int, typer.Option(help="Random seed")] = 0,
    labels: Annotated[
        Path | None, typer.Option(help="Write fault labels here (.parquet or .csv)")
    ] = None,
    bootstrap: BootstrapOpt = None,
) -> None:
    """Write simulated history as fast as possible, stamped with past event times."""
    if devices < 1:
        _fail("--devices must be at least 1")
    if days <= 0 or interval_s <= 0:
        _fail("--days and --interval-s must be positive")
    if interval_s > days * 86400:
        _fail("--interval-s is longer than the history asked for")
    server, topics = _target(bootstrap)
    with _progress("events") as progress:
        task = progress.add_task("backfill", total=None, rate=0.0)
        stats = run_backfill(
            server,
            topics,
            devices=devices,
            days=days,
            interval_s=interval_s,
            seed=seed,
            labels_path=labels,
            progress=_updater(progress, task),
        )
    console.print(
        f"{stats.readings:,} readings ({stats.devices:,} devices x {stats.steps:,} steps) and "
        f"{stats.maintenance} maintenance events ({stats.failures} failures) in "
        f"{stats.elapsed_s:.1f}s: {stats.rate:,.0f} readings/s"
        + (f"; labels in {labels}" if labels else "")
    )


def replay(
    files: Annotated[list[Path], typer.Argument(help="CSV files of sensor data")],
    speed: Annotated[
        float | None, typer.Option(help="Keep the original spacing, divided by this factor")
    ] = None,
    fast: Annotated[bool, typer.Option("--fast", help="As fast as possible (the default)")] = False,
    device_id_column: Annotated[
        str | None, typer.Option(help="Column holding the device id (default: the file name)")
    ] = None,
    timestamp_column: Annotated[
        str | None, typer.Option(help="Column holding the event time (default: detected)")
    ] = None,
    label_column: Annotated[
        list[str] | None, typer.Option(help="Ground-truth column, kept out of the values")
    ] = None,
    labels: Annotated[
        Path | None, typer.Option(help="Write ground truth (labels, NAB windows) here")
    ] = None,
    windows: Annotated[
        Path | None, typer.Option(help="NAB-style windows JSON (default: found next to NAB data)")
    ] = None,
    bootstrap: BootstrapOpt = None,
) -> None:
    """Replay CSV files as sensor readings; broken rows go to the DLQ with their reason."""
    if speed is not None and fast:
        _fail("--speed and --fast exclude each other")
    if speed is not None and speed <= 0:
        _fail("--speed must be positive")
    for f in files:
        if not f.is_file():
            _fail(f"no such file: {f}")
    if windows is not None and not windows.is_file():
        _fail(f"no such file: {windows}")
    server, topics = _target(bootstrap)
    try:
        with _stop_on_signals() as stop, _progress("rows") as progress:
            task = progress.add_task("replay", total=None, rate=0.0)
            stats = replay_csv(
                server,
                topics,
                files,
                speed=speed,
                device_id_column=device_id_column,
                timestamp_column=timestamp_column,
                label_columns=label_column or (),
                windows_path=windows,
                labels_path=labels,
                stop=stop,
                progress=_updater(progress, task),
            )
    except ValueError as exc:  # a file whose layout cannot be understood
        _fail(str(exc))
    console.print(
        f"{stats.rows:,} rows from {len(files)} file(s): {stats.produced:,} readings to "
        f"{topics.sensor_readings}, {stats.dlq:,} to {topics.dlq}, {stats.labels} labels "
        f"in {stats.elapsed_s:.1f}s"
    )


def register(app: typer.Typer) -> None:
    app.command(cls=OneLineErrors)(simulate)
    app.command(cls=OneLineErrors)(backfill)
    app.command(cls=OneLineErrors)(replay)
