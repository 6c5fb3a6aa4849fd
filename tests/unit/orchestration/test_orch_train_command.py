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


def test_train_options_override_only_what_they_set_and_refuse_bad_values() -> None:
    from edaml.commands.train import run_overrides

    none = run_overrides(holdout=None, holdout_days=None, alert_rate=None, model_kind=None)
    assert none == {}
    some = run_overrides(holdout=0.3, holdout_days=None, alert_rate=0.05, model_kind="pca")
    assert some == {"holdout": 0.3, "alert_rate": 0.05, "anomaly_kind": "pca"}
    # What the run config feeds: the feature table's RetrainConfig takes every key.
    from orchestration.defs.settings import RetrainConfig

    assert RetrainConfig(**some).holdout == 0.3  # type: ignore[arg-type]
    for bad, match in (
        ({"holdout": 1.5}, "--holdout 1.5"),
        ({"holdout_days": 0}, "--holdout-days 0"),
        ({"alert_rate": 0.7}, "--alert-rate 0.7"),
        ({"model_kind": "forest"}, "--model-kind 'forest'"),
    ):
        args: dict[str, object] = {
            "holdout": None,
            "holdout_days": None,
            "alert_rate": None,
            "model_kind": None,
            **bad,
        }
        with pytest.raises(typer.BadParameter, match=match):
            run_overrides(**args)  # type: ignore[arg-type]
