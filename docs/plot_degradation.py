"""Plot one simulated device degrading into a bearing failure: docs/degradation.png.

.venv/bin/python docs/plot_degradation.py [--seed 7] [--out docs/degradation.png]
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from features.spec import load_spec
from streaming.sources.sim import FaultLabel, SimConfig, Simulator

FLEET = load_spec()  # the simulated fleet's spec (datasets/iot-fleet.yaml)
SENSORS = FLEET.sensor_names
UNITS = FLEET.units

HOUR_MS = 3_600_000
log = logging.getLogger("plot_degradation")


def _pick(labels: list[FaultLabel], start_ms: int, fault_type: str) -> FaultLabel:
    """The failure of `fault_type` with the longest history before its onset."""
    failed = [
        x for x in labels if x.failed and x.fault_type == fault_type and x.start_ms > start_ms
    ]
    if not failed:
        raise SystemExit(f"no {fault_type} failure in this run; try another --seed")
    return max(failed, key=lambda x: x.start_ms - start_ms)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--fault", default="bearing_wear")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("degradation.png"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    config = SimConfig(devices=300, seed=args.seed, interval_s=300)
    sim = Simulator(config)
    steps = [sim.step() for _ in range(14 * 288)]
    label = _pick(sim.labels(), config.start_ms + 24 * HOUR_MS, args.fault)
    assert label.end_ms is not None
    i = sim.fleet.device_ids.index(label.device_id)
    ts = np.array([s.ts_ms[i] for s in steps])
    values = np.stack([s.values[i] for s in steps])
    lo, hi = label.start_ms - 36 * HOUR_MS, label.end_ms + 18 * HOUR_MS
    keep = (ts >= lo) & (ts <= hi)
    t = [dt.datetime.fromtimestamp(x / 1000, dt.UTC) for x in ts[keep]]
    repair = next(
        (
            m.ts_ms
            for s in steps
            for m in s.maintenance
            if m.device_id == label.device_id and m.kind == "repair" and m.ts_ms > label.end_ms
        ),
        None,
    )

    fig, axes = plt.subplots(len(SENSORS), 1, figsize=(11, 10), sharex=True)
    for j, (ax, name) in enumerate(zip(axes, SENSORS, strict=True)):
        ax.plot(t, values[keep, j], lw=0.7, color="tab:blue")
        ax.set_ylabel(f"{name}\n[{UNITS[name]}]", fontsize=9)
        ax.grid(alpha=0.3)
        for when, colour, text, align in (
            (label.start_ms, "tab:orange", "onset", "center"),
            (label.end_ms, "tab:red", "failure ", "right"),
            (repair, "tab:green", " repair", "left"),
        ):
            if when is not None:
                ax.axvline(dt.datetime.fromtimestamp(when / 1000, dt.UTC), color=colour, ls="--")
                if j == 0:
                    ax.annotate(
                        text,
                        (dt.datetime.fromtimestamp(when / 1000, dt.UTC), 1.02),
                        xycoords=("data", "axes fraction"),
                        ha=align,
                        color=colour,
                        fontsize=9,
                    )
    machine = sim.fleet.machine_types[i]
    fig.suptitle(
        f"{label.device_id} ({machine}, {sim.fleet.sites[i]}): {label.fault_type} over "
        f"{(label.end_ms - label.start_ms) / HOUR_MS:.0f} h, then failure (seed {args.seed})"
    )
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    log.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
