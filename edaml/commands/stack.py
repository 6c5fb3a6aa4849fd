"""`edaml stack up|down|status` and `edaml topics create`."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from edaml.services import StackError
from edaml.settings import Settings
from edaml.stack import Stack

console = Console()
stack_app = typer.Typer(help="Start, stop and inspect the local stack (Kafka, MLflow, Dagster).")
topics_app = typer.Typer(help="Manage edaml's Kafka topics.")

Only = Annotated[
    list[str] | None,
    typer.Option(
        "--only",
        help="Start only these services (postgres, kafka, mlflow, dagster-webserver, "
        "dagster-daemon).",
    ),
]


def _fail(exc: Exception) -> None:
    console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


Profile = Annotated[
    str | None,
    typer.Option(
        "--profile",
        help="local (sqlite storage) or production (MLflow and Dagster on PostgreSQL); "
        "default: EDAML_PROFILE or local",
    ),
]


@stack_app.command("up")
def up(only: Only = None, profile: Profile = None) -> None:
    """Start the services that are not running and wait until each is healthy."""
    if profile is not None and profile not in ("local", "production"):
        console.print(f"[red]error:[/red] --profile must be local or production, not {profile!r}")
        raise typer.Exit(2)
    settings = Settings()
    if profile is not None:
        settings = settings.model_copy(update={"profile": profile})
    names = set(only) if only else None
    stack = Stack(settings)
    known = {s.name for s in stack.services() + stack.optional_services()}
    if names and not names <= known:
        console.print(
            f"[red]error:[/red] unknown service(s) {sorted(names - known)}; choose from {sorted(known)}"
        )
        raise typer.Exit(2)
    try:
        with console.status("starting the stack…"):
            Stack(settings).up(only=names)
    except StackError as exc:
        _fail(exc)
    _print_status(settings)
    console.print(
        f"Dagster UI: http://{settings.host}:{settings.dagster_port}   "
        f"MLflow UI: {settings.tracking_uri}   Kafka: {settings.bootstrap}"
    )


@stack_app.command("down")
def down() -> None:
    """Stop the services edaml started (by pid); external services are left alone."""
    stopped = Stack(Settings()).down()
    console.print(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")


@stack_app.command("status")
def status() -> None:
    """Show each service with its address and health."""
    _print_status(Settings())


def _print_status(settings: Settings) -> None:
    table = Table("service", "address", "state")
    for name, address, state in Stack(settings).status():
        colour = (
            "green" if state.startswith("healthy") else "yellow" if "starting" in state else "red"
        )
        table.add_row(name, address, f"[{colour}]{state}[/{colour}]")
    console.print(table)


@topics_app.command("create")
def create_topics(
    partitions: Annotated[
        int | None, typer.Option(min=1, help="Partitions of the keyed topics.")
    ] = None,
) -> None:
    """Create the design's topics that do not exist yet (idempotent)."""
    from streaming.kafka import ensure_topics

    settings = Settings()
    topics = settings.topics
    if partitions is not None:
        topics = dataclasses.replace(topics, partitions=partitions)
    try:
        created = ensure_topics(settings.bootstrap, topics)
    except Exception as exc:  # the client's errors are varied; each gets one line
        _fail(exc)
        return
    console.print(f"created: {', '.join(created) if created else 'none (all exist)'}")


def register(app: typer.Typer) -> None:
    app.add_typer(stack_app, name="stack")
    app.add_typer(topics_app, name="topics")
