"""The streaming path's state: bounded memory, idle devices, rebuild."""

from __future__ import annotations

import numpy as np
from feature_asserts import mismatches

from features.engine.definitions import HOUR_MS
from features.engine.online import OnlineFeatures
from features.spec import load_spec
from tests.generators.synth import synthetic_readings, to_readings

FEATURE_SET = load_spec().feature_set  # the fleet's


def _stream(hours: float, seed: int = 4):  # type: ignore[no-untyped-def]
    per = int(hours * 3600 / 30)
    return list(
        to_readings(synthetic_readings(1, per, seed=seed, out_of_order=0.03, duplicates=0.01))
    )


def test_state_stays_bounded_by_the_lateness_and_the_panes() -> None:
    readings = _stream(72)
    on = OnlineFeatures(FEATURE_SET)
    sizes = []
    mem = []
    for k, r in enumerate(readings):
        on.update(r)
        if k % 500 == 0:
            sizes.append(on.state_sizes(r.device_id))
            mem.append(on.memory_bytes())
    fs = FEATURE_SET
    # cadence 15-45 s: the buffer spans the lateness bound, the ids the dedup horizon
    assert max(s for s, _ in sizes) <= fs.lateness_ms / 15_000 + 2
    assert max(i for _, i in sizes) <= (fs.dedup_horizon_ms + fs.lateness_ms) / 15_000 + 2
    # memory follows the panes, not the history: the third day costs no more than the second
    day = len(mem) // 3
    assert 0 < max(mem[2 * day :]) <= 1.1 * max(mem[day : 2 * day])


def _state_bytes(cadence_ms: int, hours: float) -> int:
    """Bytes of one device's state (event-id table excluded) after `hours` at `cadence_ms`."""
    rs = list(to_readings(synthetic_readings(1, int(hours * 3_600_000 / cadence_ms), seed=3,
                                             cadence_ms=cadence_ms)))  # fmt: skip
    on = OnlineFeatures(FEATURE_SET)
    for i in range(0, len(rs), 5000):
        on.update_many(rs[i : i + 5000])
    return on.memory_bytes() - on._st.table_bytes()


def test_state_per_device_does_not_grow_with_the_reading_rate() -> None:
    """26 h (full windows) at 1 reading/min and at 1 reading/s: 60x the readings, about the
    same state (before panes the buffer of the 24 h window made it ~60x)."""
    per_min = _state_bytes(60_000, 26)
    per_s = _state_bytes(1_000, 26)
    assert per_s <= 1.6 * per_min, (per_s, per_min)


def test_drop_idle_forgets_only_quiet_devices() -> None:
    on = OnlineFeatures(FEATURE_SET)
    rs = list(to_readings(synthetic_readings(3, 20, seed=1, out_of_order=0, duplicates=0, late=0)))
    for r in rs:
        on.update(r)
    newest = {r.device_id: r.ts_ms for r in rs}
    cut = sorted(newest.values())[1]
    assert on.drop_idle(cut) == 1
    assert on.device_count == 2


def test_rebuild_from_the_rebuild_horizon_serves_the_full_history_features() -> None:
    readings = _stream(60, seed=8)
    full = OnlineFeatures(FEATURE_SET)
    want = [full.update(r) for r in readings]
    resume = len(readings) - 300
    horizon = readings[resume].ts_ms - FEATURE_SET.rebuild_horizon_ms - HOUR_MS
    first = next(k for k, r in enumerate(readings) if r.ts_ms > horizon)
    assert first > 0  # the rebuild really starts mid-history
    on = OnlineFeatures(FEATURE_SET)
    on.rebuild(readings[first:resume])
    got = [on.update(r) for r in readings[resume:]]
    assert [g.duplicate for g in got] == [w.duplicate for w in want[resume:]]
    assert [g.late for g in got] == [w.late for w in want[resume:]]
    a = np.vstack([g.values for g in got if g.values is not None])
    b = np.vstack([w.values for w in want[resume:] if w.values is not None])
    assert not (errors := mismatches(a, b, FEATURE_SET.names, rtol=0.0)), errors
