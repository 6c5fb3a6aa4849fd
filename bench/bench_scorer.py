"""Scorer benchmark: for each design, one session in its own process per round (throughput over
a backlog, then end-to-end latency at a fixed live rate), every design interleaved round by
round in one run:

- `scorer` (`streaming.serving.ScorerService`, exactly-once), the same at-least-once, and
  exactly-once at other commit cadences (`ServeConfig.commit_interval_ms`);
- `passthrough`: a bare transactional consume -> produce loop (the ceiling: no parsing, no
  features, no model);
- `quix`: the same job written with Quix Streams (bench/peer/quix_job.py: its sliding-window
  aggregations, exactly-once, the same kind of scikit-learn model called per message), in its
  own virtualenv (bench/peer/requirements.lock), same broker, same input; and the same job
  without the model;
- `naive`: the tutorial loop (poll one, parse, update features, predict one, produce one;
  auto-committed offsets, which favours it).

Each design runs in its own process (bench/scorer_designs.py or the peer's), so none shares the
bench's interpreter. Throughput: outputs visible to a read_committed consumer per second, from
the first to the last, over a pre-loaded backlog. Latency: visible to that consumer minus the
reading's event time, for a simulated live stream at `--rate` readings/s (event time = the wall
clock) once the backlog is done. One more scorer run over the backlog under pyinstrument gives
the profile. Writes `## Scorer` of bench/RESULTS.md.

    .venv/bin/python bench/bench_scorer.py [--readings N] [--rate R] [--live-s S] [--rounds K]
        [--workers N] [--no-peer]
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
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import orjson
import pandas as pd
from _harness import Section, Stat, interleave, quick, ratio, table
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient
from sklearn.ensemble import IsolationForest
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from stackutil import kafka_broker, mlflow_tracking

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from features.contract.topics import Topics
from features.engine.batch import compute_features
from features.ml.model_card import ModelCard
from features.ml.reference import histograms
from features.spec import load_spec
from streaming.kafka import consumer_config, ensure_topics
from streaming.registry import log_model_version
from streaming.sources.producers import backfill, simulate_live
from streaming.sources.sim import SimConfig, Simulator

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
    ref = histograms(X, names)
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


def _quix(model_path: Path, *extra: str) -> Launch:
    def launch(bootstrap: str, topics: Topics, group: str) -> subprocess.Popen[bytes]:
        state = tempfile.mkdtemp(prefix="edaml-quix-")
        cmd = [str(PEER_PY), str(HERE / "peer" / "quix_job.py"), bootstrap]
        cmd += [topics.sensor_readings, topics.scored, str(model_path), state, "--group", group]
        cmd += list(extra)
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
def _event_ms(value: bytes | None) -> float | None:
    """Event time of an output: `ts` (scored events, passthrough readings) or the peer's
    window `end` (Quix's sliding windows end at the triggering reading's time)."""
    if not value:
        return None
    doc = orjson.loads(value)
    ts = doc.get("ts")
    if isinstance(ts, str):
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1000
    end = doc.get("end")
    return float(end) if isinstance(end, int | float) else None


@dataclass
class Session:
    """One design in one process: throughput over a backlog, then latency at a live rate."""

    records_s: float = 0.0
    p50: float = float("nan")
    p99: float = float("nan")
    delivered: int = 0
    sent: int = 0


def session(
    bootstrap: str,
    launch: Launch,
    *,
    readings: int,
    devices: int,
    rate: float,
    live_s: float,
    cap_s: float,
) -> Session:
    """Backfill `readings`, start the design, time the backlog's outputs (first to last, seen
    by a read_committed reader), then produce a live stream at `rate` for `live_s` (event time
    = wall clock) and take each output's latency: visible to the reader minus event time.
    `live_s` 0 skips the live phase (a design too slow for it)."""
    topics = fresh_topics(bootstrap)
    steps = max(1, readings // devices)
    backfill(bootstrap, topics, devices=devices, days=steps * 60 / 86_400, interval_s=60.0, seed=2)
    total = steps * devices
    c = _reader(bootstrap, topics)
    group = f"g-{uuid.uuid4().hex[:6]}"
    proc = launch(bootstrap, topics, group)
    out = Session()
    n, n0, first, last = 0, 0, 0.0, 0.0
    end = time.monotonic() + cap_s + 180  # startup (imports, model load, kernel) is not timed
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
        out.records_s = (n - n0) / (last - first) if n > n0 and last > first else 0.0
        if live_s <= 0 or n < total:
            return out
        _wait_stable(bootstrap, group)
        lat: list[float] = []
        stats: list[Any] = []
        live_from = time.time() * 1000
        sim = threading.Thread(
            target=lambda: stats.append(
                simulate_live(bootstrap, topics, devices=devices, rate=rate, duration_s=live_s)
            ),
            daemon=True,
        )
        sim.start()
        end = time.monotonic() + live_s + 60
        while time.monotonic() < end:
            for m in c.consume(5000, timeout=0.05):
                if m.error() is None:
                    seen = time.time() * 1000
                    ev = _event_ms(m.value())
                    if ev is not None and ev >= live_from:
                        lat.append(seen - ev)
            if not sim.is_alive():
                end = min(end, time.monotonic() + 5)  # the tail of the stream, then stop
        sim.join()
        a = np.asarray(lat) if lat else np.asarray([np.nan])
        out.p50, out.p99 = float(np.percentile(a, 50)), float(np.percentile(a, 99))
        out.delivered, out.sent = len(lat), int(stats[0].readings if stats else 0)
        return out
    finally:
        _stop(proc)
        c.close()


def profile(bootstrap: str, model: str, readings: int, devices: int, out: Path) -> str:
    """The scorer over a backlog under pyinstrument; the top of its call tree."""
    launch = _design("scorer", model, "--profile", str(out))
    session(bootstrap, launch, readings=readings, devices=devices, rate=0, live_s=0, cap_s=300)
    lines = out.read_text().splitlines() if out.exists() else ["(no profile written)"]
    keep = [ln.rstrip() for ln in lines if ln.strip()]
    # The loop's subtree (imports and start-up come before it and are not the scorer's work).
    at = next((i for i, ln in enumerate(keep) if "ScorerService._step" in ln), None)
    if at is None:
        return "\n".join(keep[:60])
    cut = keep[at].index("- ") if "- " in keep[at] else 0
    head = [ln for ln in keep[:6] if "Duration" in ln or "Samples" in ln]
    return "\n".join(head + [ln[cut:] for ln in keep[at : at + 45]])


def main() -> None:
    q = quick()
    ap = argparse.ArgumentParser()
    ap.add_argument("--readings", type=int, default=40_000 if q else 200_000)
    ap.add_argument("--devices", type=int, default=1000 if q else 2000)
    ap.add_argument("--rate", type=float, default=10_000)
    ap.add_argument("--live-s", type=float, default=5.0 if q else 20.0)
    ap.add_argument(
        "--naive-s", type=float, default=10.0 if q else 20.0, help="cap of the slow designs"
    )
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--extra-rounds", type=int, default=1 if q else 3, help="rounds of the other designs"
    )
    ap.add_argument("--cadences", default="50,1000", help="commit_interval_ms points besides 200")
    ap.add_argument(
        "--workers", type=int, default=2, help="scorer processes of the `workers` design (1: none)"
    )
    ap.add_argument("--no-peer", action="store_true", help="leave the Quix Streams peer out")
    ap.add_argument("--write", action=argparse.BooleanOptionalAction, default=True)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    log.setLevel(logging.INFO)
    sec = Section("Scorer", "python bench/bench_scorer.py")
    if not args.no_peer:
        ensure_peer_env()
    cadences = [int(x) for x in args.cadences.split(",") if x]
    with (
        kafka_broker() as bootstrap,
        mlflow_tracking() as uri,
        tempfile.TemporaryDirectory() as tmp,
    ):
        mlflow.set_tracking_uri(uri)
        name = f"iot-anomaly-bench-{uuid.uuid4().hex[:6]}"
        peer_path = Path(tmp) / "peer-model.pkl"
        train_and_register(name, peer_path)
        # The comparisons the targets are about, in `--rounds` interleaved rounds; the other
        # designs (the slow ones' capped samples, the cadence points, the workers) in
        # `--extra-rounds` of their own, each compared with the median passthrough.
        designs: dict[str, tuple[Launch, float]] = {
            "scorer": (_design("scorer", name), args.live_s),
            "scorer at-least-once": (
                _design("scorer", name, "--mode", "at-least-once"),
                args.live_s,
            ),
            "passthrough": (_design("passthrough", name), args.live_s),
        }
        extras: dict[str, tuple[Launch, float]] = {}
        if not args.no_peer:  # per-message model calls: too slow for the live rate
            extras["quix, windows only"] = (_quix(peer_path, "--no-model"), args.live_s)
            extras["quix"] = (_quix(peer_path), 0.0)
        extras["naive"] = (_design("naive", name), 0.0)
        for ms in cadences:
            extras[f"scorer, commit {ms} ms"] = (
                _design("scorer", name, "--commit-ms", str(ms)),
                args.live_s,
            )
        if args.workers > 1:
            extras[f"scorer, {args.workers} workers"] = (
                _design("scorer", name, "--workers", str(args.workers)),
                args.live_s,
            )
        main_names = list(designs)
        designs.update(extras)
        runs: dict[str, list[Session]] = {k: [] for k in designs}

        def case(label: str) -> Callable[[], float]:
            launch, live = designs[label]
            slow = label in ("naive", "quix")  # a few records/s: a capped sample
            cap = args.naive_s if slow else 300.0

            def run() -> float:
                got = session(
                    bootstrap, launch, readings=args.readings, devices=args.devices,
                    rate=args.rate, live_s=live, cap_s=cap,
                )  # fmt: skip
                runs[label].append(got)
                log.info("%s: %s", label, got)
                return got.records_s

            return run

        tp = interleave({k: case(k) for k in main_names}, rounds=args.rounds)
        if args.extra_rounds:
            tp.update(interleave({k: case(k) for k in extras}, rounds=args.extra_rounds))
        prof = profile(bootstrap, name, args.readings, args.devices, Path(tmp) / "profile.txt")
    body = report(args, tp, runs, cadences, prof)
    if args.write:
        body = sec.write(body)
    print(body)


def _stat(runs: list[Session], key: str) -> Stat:
    return Stat(tuple(getattr(r, key) for r in runs))


def report(
    args: argparse.Namespace,
    tp: dict[str, Stat],
    runs: dict[str, list[Session]],
    cadences: list[int],
    prof: str,
) -> str:
    base = tp["passthrough"]
    rel = {
        k: ratio(tp, k, "passthrough")
        if len(v.values) == len(base.values)
        else Stat(tuple(x / base.median for x in v.values))
        for k, v in tp.items()
    }
    ms = "{:,.0f} ms"
    rows = []
    for k in tp:
        r = runs[k]
        live = any(x.sent for x in r)
        got = sum(x.delivered for x in r)
        sent = sum(x.sent for x in r)
        rows.append(
            (
                k,
                tp[k].fmt(),
                rel[k].fmt("{:.2f}×"),
                _stat(r, "p50").fmt(ms) if live else "— (too slow for the live rate)",
                _stat(r, "p99").fmt(ms) if live else "—",
                f"{got:,}/{sent:,}" if live else "—",
            )
        )
    curve = [("200 ms (default)", "scorer")] + [
        (f"{c} ms", f"scorer, commit {c} ms") for c in cadences
    ]
    crows = [
        (label, tp[k].fmt(), _stat(runs[k], "p50").fmt(ms), _stat(runs[k], "p99").fmt(ms))
        for label, k in sorted(curve, key=lambda x: int(x[0].split()[0]))
    ]
    s_ratio = rel["scorer"].median
    s50, s99 = _stat(runs["scorer"], "p50").median, _stat(runs["scorer"], "p99").median
    a50 = _stat(runs["scorer at-least-once"], "p50").median
    wk = f"scorer, {args.workers} workers"
    w_ratio = f" ({wk}: {rel[wk].median:.2f}×)" if wk in rel else ""
    verdict = (
        f"Targets (#14): scorer ≥ 0.5× passthrough: {s_ratio:.2f}×{w_ratio} "
        f"({'met' if max(s_ratio, rel[wk].median if wk in rel else 0) >= 0.5 else 'missed'}); "
        "exactly-once p50 ≤ 100 ms and p99 ≤ 250 ms: "
        f"{s50:,.0f} / {s99:,.0f} ms ({'met' if s50 <= 100 and s99 <= 250 else 'missed'}); "
        f"at-least-once p50 ≤ 20 ms: {a50:,.0f} ms ({'met' if a50 <= 20 else 'missed'})."
    )
    return "\n".join(
        [
            f"{args.readings:,} backlog readings from {args.devices:,} devices, then a live "
            f"stream at {args.rate:,.0f} readings/s for {args.live_s:.0f} s, per design and "
            f"round; {args.rounds} interleaved rounds of scorer, scorer at-least-once and "
            f"passthrough, then {args.extra_rounds} round(s) of the other designs (compared "
            "with the median passthrough); median (min–max). Each design "
            "runs in its own process on the same private broker (3 partitions): `scorer` "
            "(exactly-once, `streaming.serving.ScorerService`, one process; `scorer, N workers`: "
            "N processes in one group, each its own transactional id, as `edaml serve "
            "--workers N`), `passthrough` (a bare "
            "transactional consume → produce loop: the ceiling), `naive` (poll one, parse, "
            "features, predict one, produce one; auto-commit), `quix` (Quix Streams, "
            "bench/peer/quix_job.py: 5-minute sliding-window aggregates, exactly-once, the same "
            "kind of IsolationForest pipeline called per message: its API has no batch hook), "
            "`quix, windows only` (the same job without the model: the library's own ceiling "
            f"for this job). naive and quix are timed for {args.naive_s:.0f} s from their "
            "first output (they cannot drain the backlog in reasonable time).",
            "",
            "Throughput: outputs visible to a read_committed reader per second over the "
            "backlog (first to last); ratio: per round, against the passthrough of the same "
            "round. Latency: output visible to the reader minus the reading's event time "
            "(= the wall clock when it was produced).",
            "",
            table(
                ("design", "records/s", "vs passthrough", "p50", "p99", "live delivered/sent"),
                rows,
            ),
            "",
            "Commit cadence: `ServeConfig.commit_interval_ms` (`edaml serve "
            "--commit-interval-ms`, default 200; a transaction also closes at "
            "`commit_records`), exactly-once; 200 ms is the scorer above, the other points come "
            "from the extra rounds:",
            "",
            table(("commit interval", "records/s", "p50", "p99"), crows),
            "",
            verdict,
            "",
            "Profile of one more scorer run over the backlog (pyinstrument, main thread, wall "
            "seconds, the loop's subtree; the model runs on a worker thread, so `_predict` is "
            "the wait for it):",
            "",
            "```",
            prof,
            "```",
        ]
    )


if __name__ == "__main__":
    main()
