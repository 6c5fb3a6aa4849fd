"""The shop simulator: volumes, seasonality, surges and their ground truth, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from streaming.sources.sim.shop import (
    DAY_MS,
    KINDS,
    MINUTE_MS,
    ShopConfig,
    day_rates,
    keys,
    readings_frame,
    simulate,
    simulate_day,
    surges_between,
    surges_table,
)

DAY = 20_454  # 2026-01-01, a Thursday


def test_a_day_has_the_configured_order_volume_and_every_kind() -> None:
    ev = simulate_day(ShopConfig(), DAY)
    counts = ev["kind"].value_counts()
    assert set(counts.index) == set(KINDS)
    # 50,000 a day on average, plus surges, minus stock-outs
    assert 40_000 < counts["order"] < 75_000
    assert counts["session"] > 2 * counts["order"] > counts["cart"]
    assert (ev["ts_ms"] // DAY_MS == DAY).all()
    assert ev["ts_ms"].is_monotonic_increasing
    assert ev["event_id"].is_unique
    assert set(ev["key"].astype(str)) == set(keys())
    orders = ev[ev["kind"] == "order"]
    assert orders["amount"].notna().all() and (orders["amount"] > 0).all()
    assert ev.loc[ev["kind"] != "order", "amount"].isna().all()


def test_volume_scales_to_half_a_million_orders() -> None:
    rates = day_rates(ShopConfig(orders_per_day=500_000, campaigns_per_day=0), DAY).rates
    assert rates[:, :, 2].sum() == pytest.approx(500_000, rel=0.1)


def test_days_are_deterministic_and_independent_of_the_run_start() -> None:
    cfg = ShopConfig(seed=7)
    a = simulate_day(cfg, DAY + 1)
    b = list(simulate(cfg, DAY * DAY_MS, (DAY + 2) * DAY_MS))[1]
    assert a.equals(b)
    other = simulate_day(ShopConfig(seed=8), DAY + 1)
    assert not other["event_id"].equals(a["event_id"].iloc[: len(other)])
    with pytest.raises(ValueError, match="midnights"):
        list(simulate(cfg, DAY * DAY_MS + 1, (DAY + 1) * DAY_MS))


def test_daily_and_weekly_seasonality() -> None:
    cfg = ShopConfig(campaigns_per_day=0, decoys_per_day=0, stockouts_per_key_per_day=0)
    week = np.stack([day_rates(cfg, DAY + d).rates[:, :, 2] for d in range(7)])
    eu = keys().index("fashion/eu-west")
    by_hour = week[:, eu].reshape(7, 24, 60).sum(axis=(0, 2))
    # night low (04:00 local = 03:00 UTC), evening peak (20:00-21:00 local)
    assert by_hour[3] < 0.3 * by_hour[19]
    assert by_hour.argmax() in (18, 19, 20)
    per_day = week.sum(axis=(1, 2))
    # 2026-01-03 and -04 are Saturday and Sunday: busier than Monday to Wednesday
    assert per_day[2] > 1.05 * per_day[4:7].mean()


def test_surges_raise_orders_and_shoppers_arrive_first() -> None:
    cfg = ShopConfig(seed=3)
    found = 0
    for day in range(DAY, DAY + 4):
        dr = day_rates(cfg, day)
        quiet = day_rates(
            ShopConfig(seed=3, campaigns_per_day=0, decoys_per_day=0, stockouts_per_key_per_day=0),
            day,
        )
        for s in dr.surges:
            k = keys().index(s.key)
            start = (s.start_ms - day * DAY_MS) // MINUTE_MS
            peak = (s.peak_ms - day * DAY_MS) // MINUTE_MS
            lead = s.lead_ms // MINUTE_MS
            if not (lead + 1 <= start and peak + 2 < 1440):
                continue
            ratio = dr.rates[k] / quiet.rates[k]
            assert ratio[peak + 1, 2] > 0.5 * s.size  # orders near the peak multiplier
            assert ratio[start - 1, 2] == pytest.approx(1.0, abs=0.6)  # not yet
            # sessions and carts already up before the orders move
            assert ratio[start - 1, 0] > 1.2 and ratio[start - 1, 1] > 1.2
            found += 1
    assert found >= 5


def test_ground_truth_lists_every_surge_once() -> None:
    cfg = ShopConfig(seed=1)
    start, end = DAY * DAY_MS, (DAY + 5) * DAY_MS
    surges = surges_between(cfg, start, end)
    assert len(surges) >= 10
    assert len({s.surge_id for s in surges}) == len(surges)
    for s in surges:
        assert start <= s.start_ms < end
        assert s.start_ms <= s.peak_ms < s.end_ms
        assert s.size > 1.3 and s.lead_ms > 0 and s.key in keys()
        assert s.kind in ("flash_sale", "promotion", "viral")
    table = surges_table(surges)
    assert table.num_rows == len(surges)
    assert table.column("size").to_pylist() == [s.size for s in surges]


def test_stockouts_cut_orders_not_sessions() -> None:
    cfg = ShopConfig(seed=0, campaigns_per_day=0, decoys_per_day=0, stockouts_per_key_per_day=1.0)
    quiet = ShopConfig(seed=0, campaigns_per_day=0, decoys_per_day=0, stockouts_per_key_per_day=0)
    r, q = day_rates(cfg, DAY).rates, day_rates(quiet, DAY).rates
    ratio = r / q
    assert (ratio[:, :, 2] < 0.1).any()
    assert np.allclose(ratio[:, :, 0], 1.0)


def test_readings_are_indicator_channels_of_the_key() -> None:
    ev = simulate_day(ShopConfig(orders_per_day=2000), DAY)
    r = readings_frame(ev)
    assert list(r.columns) == [
        "event_id",
        "device_id",
        "ts_ms",
        "sessions",
        "carts",
        "orders",
        "amount",
    ]
    assert (r[["sessions", "carts", "orders"]].sum(axis=1) == 1).all()
    assert r["orders"].sum() == (ev["kind"] == "order").sum()
    assert r["device_id"].iloc[0] == f"{ev['category'].iloc[0]}/{ev['region'].iloc[0]}"


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="orders_per_day"):
        ShopConfig(orders_per_day=0)
    with pytest.raises(ValueError, match=">= 0"):
        ShopConfig(campaigns_per_day=-1)


def test_events_encode_as_readings_of_their_key() -> None:
    from streaming.sources.sim.shop_kafka import CONTRACT, encode_events

    ev = simulate_day(ShopConfig(orders_per_day=500), DAY)
    values, record_keys, ts = encode_events(ev)
    assert len(values) == len(ev) == len(record_keys) == len(ts)
    for i in (0, int(np.flatnonzero(ev["kind"].to_numpy() == "order")[0])):
        r = CONTRACT.parse_reading(values[i])
        assert r.event_id == ev["event_id"].iloc[i] and r.ts_ms == ev["ts_ms"].iloc[i] == ts[i]
        assert r.device_id == str(ev["key"].iloc[i]) == record_keys[i].decode()
        assert r.site == ev["region"].iloc[i] and r.machine_type == ev["category"].iloc[i]
        kind = ev["kind"].iloc[i]
        assert r.values["orders"] == (kind == "order")
        assert r.values["sessions"] == (kind == "session")
        assert (r.values["amount"] is None) == (kind != "order")
