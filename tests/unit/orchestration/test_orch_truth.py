"""Anomaly ground truth from a spec's label sources: a label column of the spec's files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from edaml.cli import app
from features.ml.windows import to_ms
from features.spec import LabelSource, load_spec
from orchestration.defs.training.build import label
from orchestration.defs.training.truth import spec_truth
from tests.generators.rig import write_rig


def test_label_column_runs_become_the_entities_intervals(tmp_path: Path) -> None:
    written = write_rig(tmp_path / "rig", hours=0.25, experiments=2, seed=3)
    out = tmp_path / "rig.yaml"
    res = CliRunner().invoke(
        app,
        ["dataset", "init", *(str(w.path) for w in written), "--name", "rig", "--out", str(out)],
    )
    assert res.exit_code == 0, res.output
    spec = load_spec(out)
    truth = spec_truth(spec, fallback=None)
    assert truth.intervals is not None and not truth.unlabelled
    got = {d: (a, b) for d, _, a, b in truth.intervals.itertuples(index=False)}
    for w in written[:-1]:
        assert w.episode is not None
        ts = to_ms(pd.read_csv(w.path, sep=";")["datetime"])
        entity = w.path.relative_to(tmp_path / "rig").with_suffix("").as_posix()
        assert got[entity] == (ts[w.episode[0]], ts[w.episode[1]])
    assert "anomaly-free/anomaly-free" not in got  # a clean run: no interval, rows normal
    # Labelled rows: 1 inside the episode, 0 elsewhere; every row's label is known.
    rows = pd.DataFrame({"device_id": list(got) * 2, "ts_ms": [a for a, _ in got.values()] * 2})
    rows["ts_ms"] -= np.repeat([0, 1], len(got))
    labelled = label(
        rows,
        pd.DataFrame({"device_id": [], "ts_ms": [], "kind": []}),
        truth.intervals,
        0,
        truth.unlabelled,
    )
    assert labelled["y_anomaly"].tolist() == [1] * len(got) + [0] * len(got)
    # `missing: unlabelled`: the file without the column is left out of labelled figures.
    sources = tuple(
        ls.model_copy(update={"missing": "unlabelled"}) if ls.kind == "column" else ls
        for ls in spec.labels
    )
    assert all(isinstance(s, LabelSource) for s in sources)
    unl = spec_truth(spec.model_copy(update={"labels": sources}), fallback=None)
    assert unl.unlabelled == {"anomaly-free/anomaly-free"}
