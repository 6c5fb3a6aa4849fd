"""The dataset these Dagster definitions train on: its validated spec, loaded once, here.

`EDAML_DATASET` names it (a name under `datasets/` or a path; default the fleet, `iot-fleet`).
Every other module takes what it needs from `SPEC` (sensor names, the reading contract, the
feature set, the GE suite's ranges, model names); none reads YAML itself.
"""

from __future__ import annotations

import os
from typing import Final

from features.spec import DatasetSpec, load_spec

SPEC: Final[DatasetSpec] = load_spec(os.environ.get("EDAML_DATASET") or None)
