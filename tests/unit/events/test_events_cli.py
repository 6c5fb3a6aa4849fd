"""Bad arguments of the events commands: one line on stderr, exit status 2, nothing produced."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from edaml.commands.events import register


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.command()
    def other() -> None:  # a second command keeps typer from collapsing to a single one
        pass

    return app


@pytest.mark.parametrize(
    "args",
    [
        ["backfill", "--devices", "abc"],
        ["backfill", "--devices", "0"],
        ["backfill", "--days", "-1"],
        ["backfill", "--interval-s", "0"],
        ["simulate", "--rate", "0"],
        ["simulate", "--bogus"],
        ["simulate", "--duration", "-3"],
        ["replay"],
        ["replay", "--speed", "2", "--fast", "x.csv"],
        ["replay", "--speed", "0", "x.csv"],
        ["replay", "does-not-exist.csv"],
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(args: list[str], tmp_path: Path) -> None:
    # Point at a closed port: if validation let anything through, no broker would answer.
    result = CliRunner().invoke(
        _app(), [*args, "--bootstrap", "127.0.0.1:1"] if args != ["replay"] else args
    )
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ")
