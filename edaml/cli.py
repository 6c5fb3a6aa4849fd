"""The `edaml` command line."""

from __future__ import annotations

import importlib
import logging
from typing import Annotated

import typer

#: Modules that add commands; each exposes `register(app: typer.Typer) -> None`.
COMMAND_MODULES: tuple[str, ...] = (
    "edaml.commands.stack",
    "edaml.commands.serve",
    "edaml.commands.events",
    "edaml.commands.dataset",
    "edaml.commands.train",
    "edaml.commands.demo",
    "edaml.commands.models",
)

app = typer.Typer(
    name="edaml",
    help="Event-driven MLOps for industrial IoT: Kafka history, Dagster training, MLflow models, a streaming scorer.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"edaml {version('edaml')}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Event-driven MLOps for industrial IoT."""


for _module in COMMAND_MODULES:
    importlib.import_module(_module).register(app)


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    app()


if __name__ == "__main__":
    main()
