"""`edaml simulate|backfill --dataset shop`: arguments checked before any broker is reached."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from edaml.commands.events import register


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["backfill", "--dataset", "nope"], "--dataset nope: no simulator"),
        (["simulate", "--dataset", "nope"], "--dataset nope: no simulator"),
        (["backfill", "--orders-per-day", "1000"], "--orders-per-day is for --dataset shop"),
        (["backfill", "--dataset", "shop", "--days", "1.5"], "whole UTC days"),
        (["backfill", "--dataset", "shop", "--orders-per-day", "0"], "orders_per_day must be"),
        (["simulate", "--dataset", "shop", "--duration", "-1"], "--duration must be positive"),
    ],
)
def test_bad_shop_arguments_are_one_line(args: list[str], message: str) -> None:
    result = CliRunner().invoke(_app(), [*args, "--bootstrap", "127.0.0.1:1"])
    assert result.exit_code == 2
    err = result.stderr if result.stderr_bytes is not None else result.output
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], err
