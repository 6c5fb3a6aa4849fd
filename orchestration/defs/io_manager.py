"""The code location's IO manager: every value an asset passes on is stored under its run.

    <root>/runs/<run_id>/<asset key path>[/<partition>].pkl

Two runs never read each other's intermediate values: an asset reads the value its upstream
produced in the same run; only when the upstream was not part of the run (one asset
materialised on its own from the UI) does it read the upstream's latest materialisation, named
by that materialisation's run id (shown in the asset's metadata as `path`).
"""

from __future__ import annotations

import pickle
import uuid
from pathlib import Path
from typing import Any

import dagster as dg


class RunStorageIOManager(dg.ConfigurableIOManager):
    """Pickles asset values into a folder per run (`<home>/data/runs/<run_id>/...`)."""

    #: Where the run folders live; empty: `<home>/data/runs`.
    root: str = ""
    #: edaml's home folder (EDAML_HOME); empty: `.edaml` in the working directory.
    home: str = ""

    @property
    def base(self) -> Path:
        return (
            Path(self.root)
            if self.root
            else Path(self.home or ".edaml").resolve() / "data" / "runs"
        )

    def path_for(self, run_id: str, key: dg.AssetKey, partition: str | None = None) -> Path:
        p = self.base.joinpath(run_id, *key.path)
        return (p / partition if partition else p).with_suffix(".pkl")

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        if obj is None:
            return
        path = self.path_for(context.run_id, context.asset_key, _partition(context))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        with tmp.open("wb") as f:
            pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(path)
        context.add_output_metadata({"path": dg.MetadataValue.path(str(path))})

    def load_input(self, context: dg.InputContext) -> Any:
        key = context.asset_key
        partition = _partition(context)
        here = self.path_for(context.step_context.run_id, key, partition)
        if here.exists():
            return _load(here)
        event = context.instance.get_latest_materialization_event(key)
        if event is None:
            raise dg.Failure(
                f"{key.to_user_string()} has never been materialised: materialise it first "
                "(or run the whole job)"
            )
        path = self.path_for(event.run_id, key, partition)
        if not path.exists():
            raise dg.Failure(
                f"{key.to_user_string()}: the value of its latest materialisation (run "
                f"{event.run_id}) is gone from {path}: materialise it again"
            )
        context.log.info(
            "%s: read from run %s (not part of this run)", key.to_user_string(), event.run_id
        )
        return _load(path)


def _partition(context: dg.OutputContext | dg.InputContext) -> str | None:
    if not context.has_asset_partitions:
        return None
    keys = list(context.asset_partition_keys)
    return keys[0] if len(keys) == 1 else f"{keys[0]}..{keys[-1]}"


def _load(path: Path) -> Any:
    with path.open("rb") as f:
        return pickle.load(f)
