"""`edaml train`: run the Dagster retrain job (the same job the UI and the schedule run)."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from edaml.settings import Settings

console = Console()

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


def partition_range(days: int, end: str | None) -> tuple[str, str]:
    """The first and last daily partition of `days` days ending at `end` (default: yesterday)."""
    if days < 1:
        raise typer.BadParameter("--days must be at least 1")
    last = date.fromisoformat(end) if end else datetime.now(UTC).date() - timedelta(days=1)
    return (last - timedelta(days=days - 1)).isoformat(), last.isoformat()


def dagster_home(settings: Settings) -> str:
    """Give in-process runs the environment the stack gives its Dagster daemon (DAGSTER_HOME,
    KAFKA_BOOTSTRAP_SERVERS, MLFLOW_TRACKING_URI, EDAML_HOME; what is already set wins): the
    code location's resources read it, and the runs show in the Dagster UI."""
    from edaml.stack import _dagster_env

    for key, value in _dagster_env(settings).items():
        os.environ.setdefault(key, value)
    return os.environ["DAGSTER_HOME"]


def train(
    days: Annotated[int, typer.Option(help="Replay and train on this many daily partitions.")] = 14,
    end: Annotated[
        str | None, typer.Option(help="Last partition (YYYY-MM-DD); default: yesterday (UTC).")
    ] = None,
) -> None:
    """Replay the days from Kafka, check them, train both models, gate and promote (via Dagster)."""
    import dagster as dg

    # The run is recorded in the same instance the Dagster UI reads.
    dagster_home(Settings())
    from orchestration.definitions import defs

    first, last = partition_range(days, end)
    job = defs.resolve_job_def("retrain_job")
    with dg.DagsterInstance.get() as instance:
        console.print(
            f"retrain_job over {first} .. {last} (DAGSTER_HOME={os.environ['DAGSTER_HOME']})"
        )
        result = job.execute_in_process(
            instance=instance,
            tags={RANGE_START: first, RANGE_END: last, "edaml/trigger": "cli"},
            raise_on_error=False,
        )
    table = Table("check", "passed")
    for ev in result.get_asset_check_evaluations():
        table.add_row(ev.check_name, "[green]yes[/green]" if ev.passed else "[red]no[/red]")
    console.print(table)
    promoted = result.asset_materializations_for_node("champion_model")
    if promoted:
        for key, value in promoted[0].metadata.items():
            console.print(f"{key}: {getattr(value, 'value', value)}")
    console.print(f"run {result.run_id}: {'[green]success' if result.success else '[red]failed'}")
    if not result.success:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("train")(train)
