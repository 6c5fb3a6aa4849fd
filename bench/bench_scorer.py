"""Scorer benchmark: throughput over a backlog and end-to-end latency at a fixed live rate, for
the scorer and the designs it is compared with, all interleaved round by round in one run:

- `scorer` (`streaming.serving.ScorerService`, exactly-once; also at-least-once for latency, and
  exactly-once at several commit cadences: `ServeConfig.commit_interval_ms`);
- `passthrough`: a bare transactional consume -> produce loop (the ceiling: no parsing, no
  features, no model);
- `quix`: the same job written with Quix Streams (bench/peer/quix_job.py: its sliding-window
  aggregations, exactly-once, the same kind of scikit-learn model called per message), in its
  own virtualenv (bench/peer/requirements.lock), same broker, same input;
- `naive`: the tutorial loop (poll one, parse, update features, predict one, produce one;
  auto-committed offsets, which favours it).

Each design runs in its own process (bench/scorer_designs.py or the peer's), so none shares the
bench's interpreter. Throughput: scored records visible to a read_committed consumer per second,
from the first to the last, over a pre-loaded backlog. Latency: event time -> visible to a
read_committed consumer, for a simulated live stream at `--rate` readings/s started once the
design's consumer group is stable. One more scorer run over the backlog under pyinstrument gives
the profile. Writes `## Scorer` of bench/RESULTS.md.

    .venv/bin/python bench/bench_scorer.py [--readings N] [--rate R] [--live-s S] [--rounds K]
"""

from __future__ import annotations

import argparse
import logging
import pickle
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from _harness import Section, Stat, interleave, quick, ratio, table
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient
from sklearn.ensemble import IsolationForest
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from stackutil import kafka_broker, mlflow_tracking

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from features.batch import compute_features
from features.model_card import Histogram, ModelCard
from features.spec import load_spec
from streaming.kafka import consumer_config, ensure_topics
from streaming.producers import backfill, simulate_live
from streaming.registry import log_model_version
from streaming.sim import SimConfig, Simulator
from streaming.topics import Topics

FLEET = load_spec()  # the simulated fleet's spec (datasets/iot-fleet.yaml)
SENSORS = FLEET.sensor_names
FEATURE_SET = FLEET.feature_set

log = logging.getLogger("bench_scorer")
HERE = Path(__file__).resolve().parent
PEER_PY = HERE / "peer" / ".venv" / "bin" / "python"
PEER_FEATURES = [f"{s}__{a}_5m" for s in SENSORS for a in ("mean", "min", "max")] + ["count_5m"]


# ── the model ───────────────────────────────────────────────────────────────────────────────
def train_and_register(name: str, peer_model_path: Path) -> Any:
    sim = Simulator(SimConfig(devices=50, seed=5, interval_s=60.0))
    rows: list[pd.DataFrame] = []
    for _ in range(600):
        s = sim.step()
        df = pd.DataFrame(s.values, columns=list(SENSORS))
        df.insert(0, "ts_ms", s.ts_ms)
        df.insert(0, "device_id", sim.fleet.device_ids)
        df.insert(0, "event_id", s.event_ids.to_pylist())
        rows.append(df)
    feats = compute_features(pd.concat(rows, ignore_index=True), FEATURE_SET)
    names = list(FEATURE_SET.names)
    X = feats[names]
    model = make_pipeline(
        SimpleImputer(keep_empty_features=True), IsolationForest(n_estimators=100, random_state=0)
    ).fit(X)
    ref = {}
    for c in names:
        x = X[c].to_numpy(np.float64)
        x = x[np.isfinite(x)]
        if x.size:
            counts, edges = np.histogram(x, bins=10)
            ref[c] = Histogram(edges.tolist(), (counts / counts.sum()).tolist())
    card = ModelCard(
        model_name=name,
        kind="anomaly",
        feature_set_version=FEATURE_SET.version,
        feature_names=names,
        threshold=float(np.quantile(-model.score_samples(X), 0.995)),
        reference=ref,
        reference_alert_rate=0.005,
    )
    with mlflow.start_run():
        log_model_version(model, card, input_example=X.head(3), tags={}, alias="champion")
    # the peer's model: the same pipeline on the 5-minute aggregates Quix computes
    peer = make_pipeline(
        SimpleImputer(keep_empty_features=True), IsolationForest(n_estimators=100, random_state=0)
    ).fit(feats[PEER_FEATURES].to_numpy(np.float64))
    peer_model_path.write_bytes(pickle.dumps(peer))
    return model


# ── designs as processes ─────────────────────────────────────────────────────────────────
Launch = Callable[[str, Topics, str], subprocess.Popen[bytes]]


def _design(name: str, model: str, *extra: str) -> Launch:
    def launch(bootstrap: str, topics: Topics, group: str) -> subprocess.Popen[bytes]:
        cmd = [sys.executable, str(HERE / "scorer_designs.py"), name, bootstrap, topics.prefix]
        return subprocess.Popen([*cmd, group, model, *extra], stdout=subprocess.DEVNULL)

    return launch


def _quix(model_path: Path) -> Launch:
    def launch(bootstrap: str, topics: Topics, group: str) -> subprocess.Popen[bytes]:
        state = tempfile.mkdtemp(prefix="edaml-quix-")
        cmd = [str(PEER_PY), str(HERE / "peer" / "quix_job.py"), bootstrap]
        cmd += [topics.sensor_readings, topics.scored, str(model_path), state, "--group", group]
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL)

    return launch


def ensure_peer_env() -> None:
    """bench/peer/.venv from bench/peer/requirements.lock (uv, the shared cache)."""
    if PEER_PY.exists():
        return
    uv = Path(sys.executable).with_name("uv")
    uv_cmd = str(uv) if uv.exists() else "uv"
    subprocess.run([uv_cmd, "venv", "-q", str(PEER_PY.parents[1]), "--python", sys.executable],
                   check=True)  # fmt: skip
    subprocess.run(
        [uv_cmd, "pip", "install", "-q", "--python", str(PEER_PY), "-r",
         str(HERE / "peer" / "requirements.lock")],
        check=True,
    )  # fmt: skip


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def _wait_stable(bootstrap: str, group: str, deadline_s: float = 120.0) -> None:
    """Until the group has members and is Stable (the design is ready to consume)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            d = admin.describe_consumer_groups([group])[group].result(10)
            if d.members and str(d.state).endswith("STABLE"):
                return
        except Exception:  # the group does not exist yet
            pass
        time.sleep(0.2)
    raise TimeoutError(f"consumer group {group} not stable within {deadline_s:.0f} s")


def _reader(bootstrap: str, topics: Topics) -> Consumer:
    c = Consumer(
        consumer_config(bootstrap, f"obs-{uuid.uuid4().hex[:6]}", **{"fetch.wait.max.ms": 10})
    )
    c.subscribe([topics.scored])
    return c


def fresh_topics(bootstrap: str) -> Topics:
    t = Topics(prefix=f"b{uuid.uuid4().hex[:8]}.", partitions=3)
    ensure_topics(bootstrap, t)
    return t


# ── measurements ─────────────────────────────────────────────────────────────────────────────
def throughput(bootstrap: str, launch: Launch, readings: int, devices: int, cap_s: float) -> float:
    """Scored records/s over a backlog, seen by a read_committed reader (first to last)."""
    topics = fresh_topics(bootstrap)
    steps = max(1, readings // devices)
    backfill(bootstrap, topics, devices=devices, days=steps * 60 / 86_400, interval_s=60.0, seed=2)
    total = steps * devices
    c = _reader(bootstrap, topics)
    proc = launch(bootstrap, topics, f"g-{uuid.uuid4().hex[:6]}")
    n, first, last = 0, 0.0, 0.0
    end = time.monotonic() + cap_s + 120  # startup (model load, kernel) is not timed
    try:
        while n < total and time.monotonic() < end:
            got = sum(1 for m in c.consume(5000, timeout=0.1) if m.error() is None)
            if got:
                now = time.monotonic()
                if not first:
                    first, n0 = now, got
                    end = now + cap_s
                n, last = n + got, now
            elif first and time.monotonic() - last > 15:
                break  # nothing more is coming
    finally:
        _stop(proc)
        c.close()
    return (n - n0) / (last - first) if n > n0 and last > first else 0.0


def latency(
    bootstrap: str, launch: Launch, rate: float, seconds: float, devices: int
) -> dict[str, float]:
    """p50/p99 of event time -> visible to a read_committed reader at a fixed live rate."""
    topics = fresh_topics(bootstrap)
    group = f"g-{uuid.uuid4().hex[:6]}"
    c = _reader(bootstrap, topics)
    proc = launch(bootstrap, topics, group)
    lat: list[float] = []
    stats: list[Any] = []
    try:
        _wait_stable(bootstrap, group)
        sim = threading.Thread(
            target=lambda: stats.append(
                simulate_live(bootstrap, topics, devices=devices, rate=rate, duration_s=seconds)
            ),
            daemon=True,
        )
        sim.start()
        end = time.monotonic() + seconds + 60
        while time.monotonic() < end:
            for m in c.consume(5000, timeout=0.05):
                if m.error() is None:
                    lat.append(time.time() * 1000 - m.timestamp()[1])
            if not sim.is_alive():
                end = min(end, time.monotonic() + 5)  # the tail of the stream, then stop
        sim.join()
    finally:
        _stop(proc)
        c.close()
    a = np.asarray(lat) if lat else np.asarray([np.nan])
    return {
        "p50": float(np.percentile(a, 50)),
        "p99": float(np.percentile(a, 99)),
        "delivered": float(len(lat)),
        "sent": float(stats[0].readings if stats else 0),
    }


def profile(bootstrap: str, model: str, readings: int, devices: int, out: Path) -> str:
    """The scorer over a backlog under pyinstrument; the top of its call tree."""
    throughput(bootstrap, _design("scorer", model, "--profile", str(out)), readings, devices, 120)
    lines = out.read_text().splitlines() if out.exists() else ["(no profile written)"]
    keep = [ln.rstrip() for ln in lines if ln.strip()]
    return "\n".join(keep[:45])


def main() -> None:
    q = quick()
    ap = argparse.ArgumentParser()
    ap.add_argument("--readings", type=int, default=100_000 if q else 200_000)
    ap.add_argument("--devices", type=int, default=2000)
    ap.add_argument("--rate", type=float, default=10_000)
    ap.add_argument("--live-s", type=float, default=8.0 if q else 20.0)
    ap.add_argument("--naive-s", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cadences", default="50,200,1000", help="commit_interval_ms points")
    ap.add_argument("--write", action=argparse.BooleanOptionalAction, default=True)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    log.setLevel(logging.INFO)
    sec = Section("Scorer", "python bench/bench_scorer.py")
    ensure_peer_env()
    cadences = [int(x) for x in args.cadences.split(",")]
    with (
        kafka_broker() as bootstrap,
        mlflow_tracking() as uri,
        tempfile.TemporaryDirectory() as tmp,
    ):
        mlflow.set_tracking_uri(uri)
        name = f"iot-anomaly-bench-{uuid.uuid4().hex[:6]}"
        peer_path = Path(tmp) / "peer-model.pkl"
        train_and_register(name, peer_path)
        n, dv, r, live = args.readings, args.devices, args.rate, args.live_s
        eos = _design("scorer", name)
        alo = _design("scorer", name, "--mode", "at-least-once")
        tp = interleave(
            {
                "scorer": lambda: throughput(bootstrap, eos, n, dv, 300),
                "passthrough": lambda: throughput(
                    bootstrap, _design("passthrough", name), n, dv, 300
                ),
                "quix": lambda: throughput(bootstrap, _quix(peer_path), n, dv, 120),
                "naive": lambda: throughput(bootstrap, _design("naive", name), n, dv, args.naive_s),
            },
            rounds=args.rounds,
        )
        log.info("throughput %s", {k: v.fmt() for k, v in tp.items()})
        detail: dict[str, list[dict[str, float]]] = {}

        def lat(label: str, launch: Launch) -> Callable[[], float]:
            def run() -> float:
                got = latency(bootstrap, launch, r, live, dv)
                detail.setdefault(label, []).append(got)
                return got["p50"]

            return run

        lt = interleave(
            {
                "scorer": lat("scorer", eos),
                "scorer at-least-once": lat("scorer at-least-once", alo),
                "passthrough": lat("passthrough", _design("passthrough", name)),
                "quix": lat("quix", _quix(peer_path)),
            },
            rounds=args.rounds,
        )
        log.info("latency %s", {k: v.fmt() for k, v in lt.items()})
        curve_tp = interleave(
            {
                f"{ms}": (lambda ms=ms: throughput(
                    bootstrap, _design("scorer", name, "--commit-ms", str(ms)), n, dv, 300))
                for ms in cadences
            },
            rounds=args.rounds,
        )  # fmt: skip
        curve_lt = interleave(
            {
                f"{ms}": lat(f"cadence {ms}", _design("scorer", name, "--commit-ms", str(ms)))
                for ms in cadences
            },
            rounds=args.rounds,
        )
        prof = profile(bootstrap, name, n, dv, Path(tmp) / "profile.txt")
    body = report(args, tp, lt, detail, cadences, curve_tp, curve_lt, prof)
    if args.write:
        body = sec.write(body)
    print(body)


def _p99(detail: list[dict[str, float]]) -> Stat:
    return Stat(tuple(d["p99"] for d in detail))


def report(
    args: argparse.Namespace,
    tp: dict[str, Stat],
    lt: dict[str, Stat],
    detail: dict[str, list[dict[str, float]]],
    cadences: list[int],
    curve_tp: dict[str, Stat],
    curve_lt: dict[str, Stat],
    prof: str,
) -> str:
    rel = {k: ratio(tp, k, "passthrough") for k in tp}
    rows = [
        (k, tp[k].fmt(), rel[k].fmt("{:.2f}×")) for k in ("scorer", "passthrough", "quix", "naive")
    ]
    lrows = []
    for k in ("scorer", "scorer at-least-once", "passthrough", "quix"):
        d = detail[k]
        got = int(sum(x["delivered"] for x in d))
        sent = int(sum(x["sent"] for x in d))
        lrows.append((k, lt[k].fmt("{:,.0f} ms"), _p99(d).fmt("{:,.0f} ms"), f"{got:,}/{sent:,}"))
    crows = [
        (
            f"{ms} ms",
            curve_tp[str(ms)].fmt(),
            curve_lt[str(ms)].fmt("{:,.0f} ms"),
            _p99(detail[f"cadence {ms}"]).fmt("{:,.0f} ms"),
        )
        for ms in cadences
    ]
    s_ratio = rel["scorer"].median
    s50, s99 = lt["scorer"].median, _p99(detail["scorer"]).median
    a50 = lt["scorer at-least-once"].median
    verdict = (
        f"Targets (#14): scorer ≥ 0.5× passthrough: {s_ratio:.2f}× "
        f"({'met' if s_ratio >= 0.5 else 'missed'}); exactly-once p50 ≤ 100 ms and p99 ≤ 250 ms: "
        f"{s50:,.0f} / {s99:,.0f} ms ({'met' if s50 <= 100 and s99 <= 250 else 'missed'}); "
        f"at-least-once p50 ≤ 20 ms: {a50:,.0f} ms ({'met' if a50 <= 20 else 'missed'})."
    )
    return "\n".join(
        [
            f"{args.readings:,} backlog readings from {args.devices:,} devices; live stream at "
            f"{args.rate:,.0f} readings/s for {args.live_s:.0f} s; {args.rounds} interleaved "
            "rounds, median (min–max). Every design in its own process on the same private "
            "broker; quix = Quix Streams 3.28 (bench/peer), 5-minute sliding-window aggregates, "
            "exactly-once, an IsolationForest pipeline per message (its API has no batch hook).",
            "",
            "Throughput over the backlog (scored records/s visible to a read_committed reader):",
            "",
            table(("design", "records/s", "vs passthrough (per round)"), rows),
            "",
            "Latency, event produced → scored record visible to a read_committed reader:",
            "",
            table(("design", "p50", "p99", "delivered/sent"), lrows),
            "",
            "Commit cadence (`ServeConfig.commit_interval_ms`, `edaml serve --commit-interval-ms`;"
            " exactly-once; a transaction also closes at `commit_records`): throughput over the "
            "backlog and latency at the live rate.",
            "",
            table(("commit interval", "records/s", "p50", "p99"), crows),
            "",
            verdict,
            "",
            "Profile of the scorer over the backlog (pyinstrument, exactly-once, main thread; "
            "seconds per frame, top of the tree):",
            "",
            "```",
            prof,
            "```",
        ]
    )


if __name__ == "__main__":
    main()
