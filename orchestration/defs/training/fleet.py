"""The default dataset's model assets (the simulated fleet), made by the model-asset factory.

`load_from_defs_folder` finds `fleet_models`. When the per-dataset definitions call
`model_assets(spec, history=...)` for every dataset spec (the fleet included), this module goes.
"""

from __future__ import annotations

import dagster as dg

from features.spec import load_spec
from orchestration.defs.history.assets import event_history
from orchestration.defs.training.factory import model_assets

FLEET = model_assets(load_spec("iot-fleet"), history=event_history)


@dg.definitions
def fleet_models() -> dg.Definitions:
    """The fleet's training, evaluation, gate and champion assets, retrain job, schedule and
    drift sensor."""
    return FLEET.definitions()
