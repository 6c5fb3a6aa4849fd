from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from edaml.commands.train import partition_range, register


def test_partition_range_ends_at_the_given_day() -> None:
    assert partition_range(14, "2026-11-27") == ("2026-11-14", "2026-11-27")
    assert partition_range(1, "2026-01-01") == ("2026-01-01", "2026-01-01")
    with pytest.raises(typer.BadParameter):
        partition_range(0, "2026-01-01")


def test_train_registers_as_a_command() -> None:
    app = typer.Typer()
    register(app)

    @app.command("noop")
    def noop() -> None:  # a second command keeps typer in multi-command mode
        """Nothing."""

    result = CliRunner().invoke(app, ["train", "--help"])
    assert result.exit_code == 0 and "--days" in result.output
