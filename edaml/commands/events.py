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
from features.contract.topics import Topics
from features.spec import DatasetSpec, SpecError, load_spec
from streaming.kafka import ensure_topics
from streaming.sources.producers import backfill as run_backfill
from streaming.sources.producers import simulate_live
from streaming.sources.replay import replay_csv
from streaming.sources.sim.shop import ShopConfig
from streaming.sources.sim.shop_kafka import backfill_shop, simulate_shop

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


def fail(message: str) -> NoReturn:
    """A bad argument or input: one line on stderr, exit status 2."""
    err_console.print(f"error: {message}", markup=False, soft_wrap=True)
    raise typer.Exit(2)


def spec_or_fail(name: str | None) -> DatasetSpec:
    """The validated spec of a dataset, or its problems on stderr (one line each) and exit 2."""
    try:
        return load_spec(name)
    except SpecError as exc:
        for line in str(exc).splitlines():
            err_console.print(f"error: {line}", markup=False, soft_wrap=True)
        raise typer.Exit(2) from None


def _target(bootstrap: str | None, spec: DatasetSpec | None = None) -> tuple[str, Topics]:
    """The broker and the topics: the dataset's (its `topic_prefix`), else the deployment's."""
    settings = Settings()
    server = bootstrap or settings.bootstrap
    topics = (
        settings.topics if spec is None else spec.topics(settings.topic_prefix, settings.partitions)
    )
    ensure_topics(server, topics)
    return server, topics


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


SIMULATED = ("iot-fleet", "shop")
DatasetOpt = Annotated[
    str | None,
    typer.Option(help=f"Simulated dataset: {' or '.join(SIMULATED)} (default: the fleet)"),
]
OrdersOpt = Annotated[
    float | None, typer.Option(help="--dataset shop: orders a day (default 50,000)")
]


def _shop_target(bootstrap: str | None) -> tuple[str, Topics]:
    """The shop's broker and topics: its spec's when declared, else `<prefix>shop.`."""
    from features.spec import spec_path

    if spec_path("shop").is_file():
        return _target(bootstrap, spec_or_fail("shop"))
    settings = Settings()
    server = bootstrap or settings.bootstrap
    topics = Topics(prefix=settings.topic_prefix + "shop.", partitions=settings.partitions)
    ensure_topics(server, topics)
    return server, topics


def _shop_config(orders_per_day: float | None, seed: int) -> ShopConfig:
    try:
        return ShopConfig(
            seed=seed, orders_per_day=50_000.0 if orders_per_day is None else orders_per_day
        )
    except ValueError as exc:
        fail(f"--orders-per-day: {exc}")


def _simulated(dataset: str | None, orders_per_day: float | None) -> bool:
    """True for the shop; checks the dataset name and the shop-only option."""
    if dataset is not None and dataset not in SIMULATED:
        fail(f"--dataset {dataset}: no simulator; simulated datasets: {', '.join(SIMULATED)}")
    shop = dataset == "shop"
    if orders_per_day is not None and not shop:
        fail("--orders-per-day is for --dataset shop")
    return shop


def simulate(
    devices: Annotated[int, typer.Option(help="Simulated devices")] = 1000,
    rate: Annotated[float, typer.Option(help="Target readings per second (all devices)")] = 1000.0,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same fleet and faults)")] = 0,
    duration: Annotated[
        float | None, typer.Option(help="Seconds to run (default: until Ctrl-C)")
    ] = None,
    dataset: DatasetOpt = None,
    orders_per_day: OrdersOpt = None,
    bootstrap: BootstrapOpt = None,
) -> None:
    """Stream simulated readings live at a target rate; event time = wall clock."""
    if _simulated(dataset, orders_per_day):
        if duration is not None and duration <= 0:
            fail("--duration must be positive")
        cfg = _shop_config(orders_per_day, seed)
        server, topics = _shop_target(bootstrap)
        with _stop_on_signals() as stop, _progress("events") as progress:
            task = progress.add_task("simulate shop", total=None, rate=0.0)
            shop = simulate_shop(
                server, topics, cfg, duration, stop=stop, progress=_updater(progress, task)
            )
        console.print(
            f"{shop.events:,} shop events ({shop.orders:,} orders) in {shop.elapsed_s:.1f}s "
            f"to {topics.sensor_readings}"
        )
        return
    if devices < 1:
        fail("--devices must be at least 1")
    if rate <= 0:
        fail("--rate must be positive")
    if duration is not None and duration <= 0:
        fail("--duration must be positive")
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
    days: Annotated[
        float, typer.Option(help="Whole days of history, ending at midnight UTC")
    ] = 14.0,
    interval_s: Annotated[float, typer.Option(help="Seconds between readings of a device")] = 60.0,
    seed: Annotated[int, typer.Option(help="Random seed")] = 0,
    labels: Annotated[
        Path | None,
        typer.Option(help="Write fault labels (the shop: surges) here (.parquet or .csv)"),
    ] = None,
    dataset: DatasetOpt = None,
    orders_per_day: OrdersOpt = None,
    bootstrap: BootstrapOpt = None,
) -> None:
    """Write simulated history as fast as possible, stamped with past event times."""
    if _simulated(dataset, orders_per_day):
        if days < 1 or days != int(days):
            fail("--days: the shop's history is whole UTC days (1 or more)")
        cfg = _shop_config(orders_per_day, seed)
        server, topics = _shop_target(bootstrap)
        with _progress("events") as progress:
            task = progress.add_task("backfill shop", total=None, rate=0.0)
            shop = backfill_shop(
                server,
                topics,
                int(days),
                cfg,
                labels_path=labels,
                progress=_updater(progress, task),
            )
        console.print(
            f"{shop.events:,} shop events ({shop.orders:,} orders, {shop.surges} surges) in "
            f"{shop.elapsed_s:.1f}s: {shop.rate:,.0f} events/s to {topics.sensor_readings}"
            + (f"; surges in {labels}" if labels else "")
        )
        return
    if devices < 1:
        fail("--devices must be at least 1")
    if days <= 0 or interval_s <= 0:
        fail("--days and --interval-s must be positive")
    if interval_s > days * 86400:
        fail("--interval-s is longer than the history asked for")
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
    files: Annotated[
        list[Path] | None,
        typer.Argument(help="CSV files of sensor data (with --dataset: default the spec's files)"),
    ] = None,
    dataset: Annotated[
        str | None,
        typer.Option(
            help="Dataset spec (a name under datasets/ or a path): its layout, contract, labels "
            "and topics; without it the layout is detected and the fleet's topics are used"
        ),
    ] = None,
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
    spec = spec_or_fail(dataset) if dataset is not None else None
    if spec is not None and (device_id_column or timestamp_column or label_column):
        fail("--dataset takes the columns from the spec; drop the column options")
    if not files:
        if spec is None or not spec.files:
            fail("no files to replay: name CSV files (or a --dataset whose spec lists files)")
        files = [spec.resolve(f) for f in spec.files]
    if speed is not None and fast:
        fail("--speed and --fast exclude each other")
    if speed is not None and speed <= 0:
        fail("--speed must be positive")
    for f in files:
        if not f.is_file():
            fail(f"no such file: {f}")
    if windows is not None and not windows.is_file():
        fail(f"no such file: {windows}")
    server, topics = _target(bootstrap, spec)
    try:
        with _stop_on_signals() as stop, _progress("rows") as progress:
            task = progress.add_task("replay", total=None, rate=0.0)
            stats = replay_csv(
                server,
                topics,
                files,
                spec=spec,
                # without a dataset: the default dataset's (the fleet's) sensor ranges apply
                contract=spec.contract if spec is not None else load_spec().contract,
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
        fail(str(exc))
    unlabelled = [f for f, s in stats.files.items() if s.labels_missing]
    if unlabelled and spec is not None:
        console.print(
            f"{len(unlabelled)} file(s) without the label column, counted as "
            f"{spec.missing_labels}: {', '.join(unlabelled)}"
        )
    console.print(
        f"{stats.rows:,} rows from {len(files)} file(s): {stats.produced:,} readings to "
        f"{topics.sensor_readings}, {stats.dlq:,} to {topics.dlq}, {stats.labels} labels "
        f"in {stats.elapsed_s:.1f}s"
    )


def register(app: typer.Typer) -> None:
    app.command(cls=OneLineErrors)(simulate)
    app.command(cls=OneLineErrors)(backfill)
    app.command(cls=OneLineErrors)(replay)
