"""The designs bench_scorer.py compares, each run in its own process until SIGTERM:

- `scorer`: `streaming.serving.ScorerService` (exactly-once or at-least-once, commit cadence);
- `passthrough`: a bare transactional consume -> produce loop (no parsing, features or model);
- `naive`: the tutorial loop (poll one, parse, update features, predict one, produce one;
  auto-committed offsets, no transactions).

    python bench/scorer_designs.py DESIGN BOOTSTRAP PREFIX GROUP MODEL [--mode M] [--commit-ms N]

MLFLOW_TRACKING_URI names the registry the scorer and the naive loop load MODEL from.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def passthrough(bootstrap: str, topics: object, group: str, stop: threading.Event) -> None:
    from streaming.kafka import make_consumer, make_producer

    c = make_consumer(bootstrap, group)
    c.subscribe([topics.sensor_readings])  # type: ignore[attr-defined]
    p = make_producer(bootstrap, **{"transactional.id": f"pass-{uuid.uuid4().hex[:6]}"})
    p.init_transactions(30)
    out = topics.scored  # type: ignore[attr-defined]
    open_txn = False
    started = time.monotonic()
    while not stop.is_set():
        msgs = c.consume(2000, timeout=0.05)
        if msgs and not open_txn:
            p.begin_transaction()
            open_txn, started = True, time.monotonic()
        for m in msgs:
            if m.error() is None:
                p.produce(out, m.value(), m.key(), timestamp=m.timestamp()[1])
        if open_txn and time.monotonic() - started >= 0.2:
            p.send_offsets_to_transaction(
                c.position(c.assignment()), c.consumer_group_metadata(), 30
            )
            p.commit_transaction(30)
            open_txn = False
    c.close()


def naive(
    bootstrap: str, topics: object, group: str, stop: threading.Event, model_name: str
) -> None:
    import pandas as pd
    from confluent_kafka import Consumer

    from features.contract import encode, parse_reading
    from features.contract.events import ModelScore, ScoredEvent
    from features.engine.online import OnlineFeatures
    from features.spec import load_spec
    from streaming.kafka import consumer_config, make_producer
    from streaming.registry import load_model_version

    loaded = load_model_version(model_name, alias="champion")
    FEATURE_SET = load_spec().feature_set
    names = list(FEATURE_SET.names)
    feats = OnlineFeatures(FEATURE_SET)
    c = Consumer(consumer_config(bootstrap, group, **{"enable.auto.commit": True}))
    c.subscribe([topics.sensor_readings])  # type: ignore[attr-defined]
    p = make_producer(bootstrap)
    while not stop.is_set():
        m = c.poll(0.05)
        if m is None or m.error() is not None:
            continue
        r = parse_reading(m.value() or b"")
        upd = feats.update(r)
        if upd.values is None:
            continue
        score = float(-loaded.model.score_samples(pd.DataFrame([upd.values], columns=names))[0])
        ev = ScoredEvent(
            event_id=str(uuid.uuid4()),
            ts_ms=r.ts_ms,
            reading_event_id=r.event_id,
            device_id=r.device_id,
            scores=[ModelScore(model_name, loaded.version, score, loaded.card.threshold, False)],
            decision="normal",
            fallback=False,
            fallback_reason="",
            feature_set_version=FEATURE_SET.version,
        )
        p.produce(topics.scored, encode(ev), r.device_id, timestamp=r.ts_ms)  # type: ignore[attr-defined]
        p.poll(0)
    p.flush(30)
    c.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("design", choices=("scorer", "passthrough", "naive"))
    ap.add_argument("bootstrap")
    ap.add_argument("prefix")
    ap.add_argument("group")
    ap.add_argument("model")
    ap.add_argument("--mode", default="exactly-once")
    ap.add_argument("--commit-ms", type=int, default=200)
    ap.add_argument("--profile", help="write a pyinstrument text profile of the run here")
    ap.add_argument("--workers", type=int, default=1, help="scorer processes in the group")
    ap.add_argument("--instance", default="bench-0")
    args = ap.parse_args()
    children: list[subprocess.Popen[bytes]] = []
    if args.design == "scorer" and args.workers > 1:  # the others, each its own process
        base = [a for a in sys.argv[1:] if a not in ("--workers", str(args.workers))]
        children = [
            subprocess.Popen([sys.executable, __file__, *base, "--instance", f"bench-{k}"])
            for k in range(1, args.workers)
        ]
    from features.contract.topics import Topics

    topics = Topics(prefix=args.prefix, partitions=3)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    profiler = None
    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.002)
        profiler.start()
    if args.design == "scorer":
        from streaming.serving import ScorerService, ServeConfig

        svc = ScorerService(
            ServeConfig(
                bootstrap=args.bootstrap,
                topics=topics,
                models=(args.model,),
                group=args.group,
                mode=args.mode,
                commit_interval_ms=args.commit_ms,
                shadow=False,
                metrics_port=None,
                report_interval_s=3600,
                instance_id=args.instance,
            )
        )

        def stop(*_: object) -> None:
            for c in children:
                c.send_signal(signal.SIGTERM)
            svc.stop()

        signal.signal(signal.SIGTERM, stop)
        svc.run()  # in the main thread, so that the profiler sees it
        for c in children:
            c.wait(60)
    elif args.design == "passthrough":
        passthrough(args.bootstrap, topics, args.group, stop)
    else:
        naive(args.bootstrap, topics, args.group, stop, args.model)
    if profiler is not None:
        profiler.stop()
        Path(args.profile).write_text(profiler.output_text(unicode=False, color=False))


if __name__ == "__main__":
    main()
