"""The `edaml` command line."""

from __future__ import annotations

import importlib
import logging

import typer

#: Modules that add commands; each exposes `register(app: typer.Typer) -> None`.
COMMAND_MODULES: tuple[str, ...] = (
    "edaml.commands.stack",
    "edaml.commands.serve",
    "edaml.commands.events",
    "edaml.commands.train",
    "edaml.commands.demo",
)

app = typer.Typer(
    name="edaml",
    help="Event-driven MLOps for industrial IoT: Kafka history, Dagster training, MLflow models, a streaming scorer.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

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
