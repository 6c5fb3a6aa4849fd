"""The run-scoped IO manager: values are stored per run, so runs never read each other's."""

# No `from __future__ import annotations`: Dagster inspects the config annotation at runtime.

from pathlib import Path

import dagster as dg
import pytest

from orchestration.defs.io_manager import RunStorageIOManager


class Knob(dg.Config):
    value: int = 1


@dg.asset(key_prefix=["ds"])
def upstream(config: Knob) -> dict[str, int]:
    return {"value": config.value}


@dg.asset(key_prefix=["ds"], ins={"up": dg.AssetIn(key=upstream.key)})
def downstream(up: dict[str, int]) -> int:
    return up["value"] * 10


def _run(
    instance: dg.DagsterInstance, io: RunStorageIOManager, value: int
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [upstream, downstream],
        instance=instance,
        resources={"io_manager": io},
        run_config={"ops": {"ds__upstream": {"config": {"value": value}}}},
    )


def test_each_run_keeps_its_own_values(tmp_path: Path) -> None:
    io = RunStorageIOManager(root=str(tmp_path))
    with dg.instance_for_test() as instance:
        a, b = _run(instance, io, 1), _run(instance, io, 2)
        assert a.output_for_node("ds__downstream") == 10
        assert b.output_for_node("ds__downstream") == 20
        for run in (a, b):
            path = io.path_for(run.run_id, upstream.key)
            assert path == tmp_path / run.run_id / "ds" / "upstream.pkl" and path.exists()
        # Materialised alone, downstream reads the latest materialisation's run (b).
        alone = dg.materialize(
            [upstream, downstream],
            instance=instance,
            resources={"io_manager": io},
            selection=[downstream],
        )
        assert alone.output_for_node("ds__downstream") == 20


def test_a_value_that_is_gone_is_a_clear_failure(tmp_path: Path) -> None:
    io = RunStorageIOManager(root=str(tmp_path))
    with dg.instance_for_test() as instance:
        first = _run(instance, io, 3)
        io.path_for(first.run_id, upstream.key).unlink()
        with pytest.raises(dg.Failure, match="is gone from"):
            dg.materialize(
                [upstream, downstream],
                instance=instance,
                resources={"io_manager": io},
                selection=[downstream],
            )
