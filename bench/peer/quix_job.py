"""The scorer's job written the way a Quix Streams user would: the peer of bench_scorer.py.

Reads `iot.sensor_readings` JSON, keeps per device a 5-minute sliding window (Quix's windowed
aggregations: mean, min and max of each sensor and a count, state in RocksDB with changelog
topics) emitted on every message (`.current()`), scores each row with the same kind of
scikit-learn model as the scorer (an IsolationForest pipeline, loaded from a pickle the bench
trained), and writes one JSON record per reading with exactly-once processing. Quix Streams'
DataFrame API applies functions per message; it has no micro-batch hook, so the model is called
once per message. `--no-model` runs the windows alone (the library's own ceiling for this job).

Runs in bench/peer/.venv (its own lock: quixstreams pins an older confluent-kafka than edaml):

    bench/peer/.venv/bin/python bench/peer/quix_job.py BOOTSTRAP INPUT OUTPUT MODEL.pkl STATE_DIR
"""

from __future__ import annotations

import argparse
import pickle
import signal
from datetime import datetime
from typing import Any

import numpy as np
from quixstreams import Application
from quixstreams.dataframe.windows import Count, Max, Mean, Min

SENSORS = ("temperature", "vibration", "pressure", "current", "rpm")
FEATURES = [f"{s}__{a}" for s in SENSORS for a in ("mean", "min", "max")] + ["count"]


def _ts(value: Any, headers: Any, timestamp: float, timestamp_type: Any) -> int:
    return int(datetime.fromisoformat(value["ts"].replace("Z", "+00:00")).timestamp() * 1000)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("bootstrap")
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("model")
    ap.add_argument("state_dir")
    ap.add_argument("--group", default="quix-peer")
    ap.add_argument("--guarantee", default="exactly-once")
    ap.add_argument("--commit-interval", type=float, default=0.2)
    ap.add_argument("--no-model", action="store_true")
    args = ap.parse_args()
    with open(args.model, "rb") as f:
        model = pickle.load(f)

    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        processing_guarantee=args.guarantee,
        commit_interval=args.commit_interval,
        state_dir=args.state_dir,
        loglevel="WARNING",
    )
    readings = app.topic(
        args.input, value_deserializer="json", key_deserializer="str", timestamp_extractor=_ts
    )
    scored = app.topic(args.output, value_serializer="json", key_serializer="str")
    sdf = app.dataframe(readings)
    sdf = sdf.apply(
        lambda r: {
            "event_id": r["event_id"],
            **{s: r["values"].get(s) for s in SENSORS},  # None (missing) is skipped
        }
    )
    aggs: dict[str, Any] = {"count": Count()}
    for s in SENSORS:
        aggs[f"{s}__mean"] = Mean(s)
        aggs[f"{s}__min"] = Min(s)
        aggs[f"{s}__max"] = Max(s)
    sdf = sdf.sliding_window(duration_ms=300_000, grace_ms=120_000).agg(**aggs).current()

    def score(w: dict[str, Any]) -> dict[str, Any]:
        out = {"end": w["end"]}
        if not args.no_model:
            row = np.array([[np.nan if w[k] is None else w[k] for k in FEATURES]])
            out["score"] = float(-model.score_samples(row)[0])
        return out

    sdf = sdf.apply(score)
    sdf.to_topic(scored)
    signal.signal(signal.SIGTERM, lambda *_: app.stop())
    app.run()


if __name__ == "__main__":
    main()
