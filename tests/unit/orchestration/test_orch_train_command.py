from __future__ import annotations

from datetime import date

import pytest
import typer
from typer.testing import CliRunner

from edaml.commands.train import partition_range, register

TODAY = date(2026, 11, 29)


def test_partition_range_ends_at_the_given_day() -> None:
    assert partition_range(14, "2026-11-27", None, TODAY) == ("2026-11-14", "2026-11-27")
    assert partition_range(1, "2026-01-01", None, TODAY) == ("2026-01-01", "2026-01-01")
    with pytest.raises(typer.BadParameter):
        partition_range(0, "2026-01-01", None, TODAY)
    with pytest.raises(typer.BadParameter, match="only complete days"):
        partition_range(1, "2026-11-29", None, TODAY)


def test_no_dates_trains_on_every_day_with_data() -> None:
    # Historical data: from its first to its last event day.
    assert partition_range(None, None, ("2014-02-05", "2014-02-19"), TODAY) == (
        "2014-02-05",
        "2014-02-19",
    )
    # Live data: up to yesterday (today is not complete).
    assert partition_range(None, None, ("2026-11-20", "2026-11-29"), TODAY) == (
        "2026-11-20",
        "2026-11-28",
    )
    # --days N without --end: the last N days with data.
    assert partition_range(3, None, ("2014-02-05", "2014-02-19"), TODAY) == (
        "2014-02-17",
        "2014-02-19",
    )
    with pytest.raises(typer.BadParameter, match="no events"):
        partition_range(None, None, None, TODAY)
    with pytest.raises(typer.BadParameter, match="no complete day"):
        partition_range(None, None, ("2026-11-29", "2026-11-29"), TODAY)


def test_train_registers_as_a_command() -> None:
    app = typer.Typer()
    register(app)

    @app.command("noop")
    def noop() -> None:  # a second command keeps typer in multi-command mode
        """Nothing."""

    result = CliRunner().invoke(app, ["train", "--help"])
    assert result.exit_code == 0 and "--days" in result.output
