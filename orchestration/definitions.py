"""The Dagster code location of edaml: `dg dev`, `dagster dev -w workspace.yaml`.

Everything under `orchestration/defs/` is found by `dg.load_from_defs_folder` (configured by
`[tool.dg]` in pyproject.toml): module-level assets, checks, jobs, schedules and sensors, and the
`@dg.definitions` functions that build per-dataset definitions and the resources.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _load_defs_folder() -> dg.Definitions:
    """orchestration/defs/, found through `[tool.dg]` in a checkout; an installed wheel has no
    pyproject.toml to read, so there the same folder is loaded by its module."""
    if (PROJECT_ROOT / "pyproject.toml").is_file():
        return dg.load_from_defs_folder(path_within_project=PROJECT_ROOT)
    from dagster.components.core.load_defs import load_defs

    import orchestration.defs

    return load_defs(orchestration.defs, project_root=PROJECT_ROOT)


def build_defs(resources: dict[str, object] | None = None) -> dg.Definitions:
    """The code location's definitions; `resources` replace the environment's (tests), and the
    partitions follow the topics they point at."""
    if resources is None:
        return _load_defs_folder()
    from orchestration.defs.datasets import all_definitions
    from orchestration.defs.resources import default_resources

    return all_definitions({**default_resources(), **resources})


defs = build_defs()
