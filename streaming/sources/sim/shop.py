"""The shop simulator: sessions, carts and orders per category x region, with surges (pure).

Demand, per key (category x region) and minute: a base rate (the category's and the region's
share of `orders_per_day`) times a daily shape in the region's local time (a night low, a lunch
bump, an evening peak), a weekly shape (busier weekends), a small day-to-day wobble of each key,
times the surges running on the key, times a stock-out when one is on. Sessions and cart
additions follow orders at `sessions_per_order` and `carts_per_order`.

Surges come from campaigns: a flash sale (one category in a few regions: large, a ramp of
minutes, an hour or two), a promotion (one region, a few categories: moderate, a slower ramp,
hours) or a product going viral (one key: ramp tens of minutes). Shoppers arrive before the
orders: sessions and carts start to rise `lead` minutes before the orders do (a countdown, a
newsletter, social traffic), which is what makes a surge predictable ahead. Decoys are bursts
of sessions with hardly any carts (crawlers, a newsletter that does not convert): no surge.
Stock-outs are rare: orders and carts of a key fall for hours, sessions do not.

Ground truth (`Surge`): one row per key a campaign hits: start (orders begin to rise), peak
(the ramp ends), end, size (peak order multiplier) and the campaign's kind and id.

Determinism: campaigns, decoys and stock-outs of a UTC day are drawn from a generator seeded
by (seed, day number since the epoch), and so are that day's events; a day is the same
whatever the run's start, so backfills anchored at midnight give the same days. Day D's rates
come from what was drawn on D-1, D and D+1 (nothing lasts a day).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import pandas as pd
import pyarrow as pa

from features.contract.bulk import uuid4_strings

DAY_MS: Final = 86_400_000
MINUTE_MS: Final = 60_000
DAY_MIN: Final = 1440

#: The event kinds, in the order of the indicator channels of a reading.
KINDS: Final = ("session", "cart", "order")
#: A reading's channels: one 0/1 indicator per kind and the order's amount (null otherwise).
CHANNELS: Final = ("sessions", "carts", "orders", "amount")

SurgeKind = Literal["flash_sale", "promotion", "viral"]


@dataclass(frozen=True, slots=True)
class Category:
    name: str
    share: float  # of all orders
    amount_median: float  # order value
    amount_sigma: float  # of log(amount)


@dataclass(frozen=True, slots=True)
class Region:
    name: str
    share: float
    utc_offset_h: int


CATEGORIES: Final[tuple[Category, ...]] = (
    Category("electronics", 0.16, 180.0, 0.8),
    Category("fashion", 0.20, 55.0, 0.6),
    Category("home", 0.13, 75.0, 0.7),
    Category("beauty", 0.11, 32.0, 0.5),
    Category("sports", 0.10, 65.0, 0.7),
    Category("toys", 0.08, 35.0, 0.6),
    Category("grocery", 0.14, 48.0, 0.4),
    Category("books", 0.08, 22.0, 0.4),
)
REGIONS: Final[tuple[Region, ...]] = (
    Region("eu-west", 0.34, 1),
    Region("us-east", 0.30, -5),
    Region("us-west", 0.18, -8),
    Region("apac", 0.18, 8),
)
#: Busier weekends (Monday first), in local time.
_WEEKLY: Final = np.array([0.95, 0.93, 0.95, 0.98, 1.04, 1.10, 1.05])


def keys() -> tuple[str, ...]:
    """Entity keys `<category>/<region>`, category-major."""
    return tuple(f"{c.name}/{r.name}" for c in CATEGORIES for r in REGIONS)


def _daily_shape() -> np.ndarray:
    """Relative order rate per local minute of day (mean 1): night low, lunch, evening peak."""
    h = np.arange(DAY_MIN) / 60.0
    y = (
        0.12
        + 0.55 * np.exp(-(((h - 12.5) / 2.2) ** 2))
        + 1.0 * np.exp(-(((h - 20.5) / 2.4) ** 2))
        + 0.35 * np.exp(-(((h - 16.0) / 4.0) ** 2))
    )
    return np.asarray(y / y.mean())


_DAILY: Final = _daily_shape()


@dataclass(frozen=True, slots=True)
class ShopConfig:
    seed: int = 0
    orders_per_day: float = 50_000.0
    sessions_per_order: float = 3.0
    carts_per_order: float = 1.5
    #: Campaigns a day across the whole shop (each hits one to four keys).
    campaigns_per_day: float = 3.0
    decoys_per_day: float = 1.5
    stockouts_per_key_per_day: float = 0.02
    #: Day-to-day wobble of each key's level (sd of its log).
    day_noise: float = 0.05

    def __post_init__(self) -> None:
        if not 1 <= self.orders_per_day <= 5_000_000:
            raise ValueError("orders_per_day must be between 1 and 5,000,000")
        if min(self.sessions_per_order, self.carts_per_order) < 0:
            raise ValueError("sessions_per_order and carts_per_order must be >= 0")
        if min(self.campaigns_per_day, self.decoys_per_day, self.stockouts_per_key_per_day) < 0:
            raise ValueError("campaign, decoy and stock-out rates must be >= 0")


@dataclass(frozen=True, slots=True)
class Surge:
    """Ground truth of one surge on one key. Times in ms since the epoch; `size` is the peak
    multiplier of the key's order rate; `lead_ms`: how long before `start_ms` shoppers began to
    arrive."""

    surge_id: str
    campaign: str
    kind: SurgeKind
    key: str
    start_ms: int
    peak_ms: int
    end_ms: int
    size: float
    lead_ms: int


@dataclass(frozen=True, slots=True)
class _Episode:
    """Something that changes a key's rates for a while: a surge, a decoy or a stock-out."""

    key: int
    start_min: int  # minutes since the epoch when orders start to move
    lead: float  # minutes of pre-arrival before start
    ramp: float
    hold: float
    tau: float  # decay time constant after the hold
    size: float  # peak order multiplier
    pre_sessions: float  # pre-arrival strength of sessions and carts (share of size - 1)
    pre_carts: float
    effect: Literal["surge", "decoy", "stockout"]
    surge: Surge | None = None

    @property
    def first_min(self) -> int:
        return self.start_min - math.ceil(self.lead)

    @property
    def last_min(self) -> int:
        return self.start_min + math.ceil(self.ramp + self.hold + 5 * self.tau)


_KIND_P: Final = {"flash_sale": 0.35, "promotion": 0.4, "viral": 0.25}


def _day_rng(seed: int, day: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, day, stream])


def _episodes_of_day(cfg: ShopConfig, day: int) -> list[_Episode]:
    """Campaigns, decoys and stock-outs drawn on UTC day `day` (days since the epoch)."""
    rng = _day_rng(cfg.seed, day, 1)
    nk, nc, nr = len(keys()), len(CATEGORIES), len(REGIONS)
    out: list[_Episode] = []
    for c in range(int(rng.poisson(cfg.campaigns_per_day))):
        kind: SurgeKind = str(rng.choice(list(_KIND_P), p=list(_KIND_P.values())))  # type: ignore[assignment]
        region = int(rng.integers(nr))
        cat = int(rng.integers(nc))
        # local daytime start (09:00-22:00 in the first region's time)
        local = rng.uniform(9 * 60, 22 * 60)
        start = day * DAY_MIN + int(local - REGIONS[region].utc_offset_h * 60)
        if kind == "flash_sale":
            regions = rng.choice(nr, size=int(rng.integers(1, 4)), replace=False)
            hit = [cat * nr + int(r) for r in regions]
            size, ramp = rng.uniform(3.0, 7.0), rng.uniform(2.0, 10.0)
            hold, tau = rng.uniform(30.0, 100.0), rng.uniform(8.0, 20.0)
            lead, pre_s, pre_c = rng.uniform(60.0, 150.0), 0.8, 1.0
        elif kind == "promotion":
            cats = rng.choice(nc, size=int(rng.integers(1, 4)), replace=False)
            hit = [int(k) * nr + region for k in cats]
            size, ramp = rng.uniform(1.8, 3.0), rng.uniform(10.0, 30.0)
            hold, tau = rng.uniform(90.0, 300.0), rng.uniform(20.0, 45.0)
            lead, pre_s, pre_c = rng.uniform(50.0, 120.0), 1.0, 0.8
        else:
            hit = [cat * nr + region]
            size, ramp = rng.uniform(2.0, 5.0), rng.uniform(15.0, 40.0)
            hold, tau = rng.uniform(45.0, 150.0), rng.uniform(15.0, 40.0)
            lead, pre_s, pre_c = rng.uniform(30.0, 90.0), 1.0, 0.7
        campaign = f"{day}-{c}"
        for k in hit:
            s = float(size * rng.lognormal(0.0, 0.12))
            key_start = start + int(rng.integers(0, 6))
            peak = key_start + ramp
            surge = Surge(
                surge_id=f"{campaign}-{k}",
                campaign=campaign,
                kind=kind,
                key=keys()[k],
                start_ms=key_start * MINUTE_MS,
                peak_ms=round(peak * MINUTE_MS),
                end_ms=round((peak + hold + 3 * tau) * MINUTE_MS),
                size=round(s, 3),
                lead_ms=round(lead * MINUTE_MS),
            )
            out.append(
                _Episode(
                    k,
                    key_start,
                    lead,
                    ramp,
                    hold,
                    tau,
                    s,
                    pre_s * rng.uniform(0.7, 1.3),
                    pre_c * rng.uniform(0.7, 1.3),
                    "surge",
                    surge,
                )
            )
    for _ in range(int(rng.poisson(cfg.decoys_per_day))):
        k = int(rng.integers(nk))
        start = day * DAY_MIN + int(rng.uniform(0, DAY_MIN))
        out.append(
            _Episode(
                k,
                start,
                rng.uniform(20.0, 60.0),
                0.0,
                rng.uniform(20.0, 90.0),
                10.0,
                float(rng.uniform(2.0, 5.0)),
                1.0,
                0.08,
                "decoy",
            )
        )
    for key in np.flatnonzero(rng.random(nk) < cfg.stockouts_per_key_per_day).tolist():
        start = day * DAY_MIN + int(rng.uniform(0, DAY_MIN))
        out.append(
            _Episode(
                key, start, 0.0, 0.0, rng.uniform(60.0, 360.0), 1.0, 0.05, 0.0, 0.0, "stockout"
            )
        )
    return out


def _shape(t: np.ndarray, ep: _Episode) -> tuple[np.ndarray, np.ndarray]:
    """(orders' surge profile g in [0, 1], pre-arrival profile p in [0, 1]) at minutes `t`
    relative to the episode's start."""
    g = np.zeros_like(t)
    if ep.ramp > 0:
        g = np.where((t >= 0) & (t < ep.ramp), t / ep.ramp, g)
    on = ep.ramp + ep.hold
    g = np.where((t >= ep.ramp) & (t < on), 1.0, g)
    g = np.where(t >= on, np.exp(-(t - on) / ep.tau), g)
    p = np.zeros_like(t)
    if ep.lead > 0:
        p = np.where((t >= -ep.lead) & (t < 0), np.sqrt(np.clip((t + ep.lead) / ep.lead, 0, 1)), p)
        p = np.where(t >= 0, np.clip(1 - t / max(ep.ramp, 1.0), 0, 1), p)
    return g, p


@dataclass(frozen=True, slots=True)
class DayRates:
    """Expected events per key, minute and kind of one UTC day (before drawing counts)."""

    day: int
    rates: np.ndarray  # (keys, 1440, 3): sessions, carts, orders
    amount_factor: np.ndarray  # (keys, 1440): flash-sale discounts
    surges: tuple[Surge, ...]  # surges starting on this day


def day_rates(cfg: ShopConfig, day: int) -> DayRates:
    """Expected rates of UTC day `day` (days since the epoch), surges and stock-outs included."""
    nk = len(keys())
    minute = day * DAY_MIN + np.arange(DAY_MIN)
    cat_share = np.repeat([c.share for c in CATEGORIES], len(REGIONS))
    reg_share = np.tile([r.share for r in REGIONS], len(CATEGORIES))
    offsets = np.tile([r.utc_offset_h * 60 for r in REGIONS], len(CATEGORIES))
    local = minute[None, :] + offsets[:, None]  # (keys, minutes) local minutes since epoch
    weekday = ((local // DAY_MIN) + 3) % 7  # 1970-01-01 was a Thursday (3, Monday = 0)
    base = cfg.orders_per_day / DAY_MIN * cat_share * reg_share
    wobble = _day_rng(cfg.seed, day, 2).lognormal(0.0, cfg.day_noise, nk)
    orders = (base * wobble)[:, None] * _DAILY[local % DAY_MIN] * _WEEKLY[weekday]
    mult = np.ones((nk, DAY_MIN, 3))
    amount = np.ones((nk, DAY_MIN))
    # a campaign drawn on a neighbouring day may start (or its shoppers arrive) on this one
    eps = [e for d in (day - 1, day, day + 1) for e in _episodes_of_day(cfg, d)]
    for ep in eps:
        lo, hi = max(ep.first_min, minute[0]), min(ep.last_min, minute[-1])
        if lo > hi:
            continue
        sl = slice(lo - minute[0], hi - minute[0] + 1)
        t = np.arange(lo, hi + 1, dtype=np.float64) - ep.start_min
        g, p = _shape(t, ep)
        m = mult[ep.key, sl]
        if ep.effect == "stockout":
            out = (t >= 0) & (t < ep.hold)
            m[out, 1] *= 0.2
            m[out, 2] *= ep.size
            continue
        up = ep.size - 1.0
        m[:, 0] *= 1 + up * np.maximum(ep.pre_sessions * p, g)
        m[:, 1] *= 1 + up * np.maximum(ep.pre_carts * p, g if ep.effect == "surge" else 0.0)
        if ep.effect == "surge":
            m[:, 2] *= 1 + up * g
            if ep.surge is not None and ep.surge.kind == "flash_sale":
                amount[ep.key, sl] = np.where(g > 0, 0.8, amount[ep.key, sl])
    rates = np.empty((nk, DAY_MIN, 3))
    rates[:, :, 0] = orders * cfg.sessions_per_order * mult[:, :, 0]
    rates[:, :, 1] = orders * cfg.carts_per_order * mult[:, :, 1]
    rates[:, :, 2] = orders * mult[:, :, 2]
    surges = tuple(
        ep.surge for ep in eps if ep.surge is not None and ep.surge.start_ms // DAY_MS == day
    )
    return DayRates(day, rates, amount, surges)


def simulate_day(cfg: ShopConfig, day: int) -> pd.DataFrame:
    """The events of UTC day `day`, in event-time order: `event_id`, `ts_ms`, `key`,
    `category`, `region`, `kind` (session | cart | order), `amount` (NaN unless an order)."""
    dr = day_rates(cfg, day)
    rng = _day_rng(cfg.seed, day, 3)
    counts = rng.poisson(dr.rates)  # (keys, minutes, kinds)
    flat = counts.ravel()
    idx = np.repeat(np.arange(flat.size), flat)
    k, rem = np.divmod(idx, DAY_MIN * 3)
    m, kind = np.divmod(rem, 3)
    ts = day * DAY_MS + m * MINUTE_MS + rng.integers(0, MINUTE_MS, size=len(idx))
    order = np.argsort(ts, kind="stable")
    k, m, kind, ts = k[order], m[order], kind[order], ts[order]
    n = len(ts)
    nr = len(REGIONS)
    cat, reg = np.divmod(k, nr)
    med = np.array([c.amount_median for c in CATEGORIES])[cat]
    sig = np.array([c.amount_sigma for c in CATEGORIES])[cat]
    amount = np.round(med * np.exp(sig * rng.standard_normal(n)) * dr.amount_factor[k, m], 2)
    amount = np.where(kind == 2, np.maximum(amount, 0.5), np.nan)
    ids = uuid4_strings(rng, n).to_numpy(zero_copy_only=False)
    return pd.DataFrame(
        {
            "event_id": ids,
            "ts_ms": ts.astype(np.int64),
            "key": _categorical(k, keys()),
            "category": _categorical(cat, [c.name for c in CATEGORIES]),
            "region": _categorical(reg, [r.name for r in REGIONS]),
            "kind": _categorical(kind, KINDS),
            "amount": amount,
        }
    )


def _categorical(codes: np.ndarray, names: Sequence[str]) -> pd.Categorical[str]:
    return pd.Categorical.from_codes(codes.astype(np.int64), pd.Index(list(names)))


def days_of(start_ms: int, end_ms: int) -> range:
    """UTC days (since the epoch) of `[start_ms, end_ms)`; both must be midnights."""
    if start_ms % DAY_MS or end_ms % DAY_MS or end_ms <= start_ms:
        raise ValueError("start and end must be UTC midnights, end after start")
    return range(start_ms // DAY_MS, end_ms // DAY_MS)


def simulate(cfg: ShopConfig, start_ms: int, end_ms: int) -> Iterator[pd.DataFrame]:
    """The events of every UTC day in `[start_ms, end_ms)`, one frame per day."""
    for day in days_of(start_ms, end_ms):
        yield simulate_day(cfg, day)


def surges_between(cfg: ShopConfig, start_ms: int, end_ms: int) -> list[Surge]:
    """Ground truth: every surge starting in `[start_ms, end_ms)` (midnights)."""
    return [s for day in days_of(start_ms, end_ms) for s in day_rates(cfg, day).surges]


def readings_frame(events: pd.DataFrame) -> pd.DataFrame:
    """The events as readings of their key (the feature engine's and the contract's view):
    `event_id`, `device_id`, `ts_ms`, one 0/1 indicator per kind, `amount`."""
    kind = events["kind"].cat.codes.to_numpy()
    out = pd.DataFrame(
        {
            "event_id": events["event_id"].to_numpy(),
            "device_id": events["key"].astype(str).to_numpy(),
            "ts_ms": events["ts_ms"].to_numpy(np.int64),
        }
    )
    for j, ch in enumerate(CHANNELS[:3]):
        out[ch] = (kind == j).astype(np.float64)
    out["amount"] = events["amount"].to_numpy(np.float64)
    return out


SURGE_COLUMNS: Final = (
    "surge_id",
    "campaign",
    "kind",
    "key",
    "start_ms",
    "peak_ms",
    "end_ms",
    "size",
    "lead_ms",
)


def surges_table(surges: list[Surge]) -> pa.Table:
    """Columns `SURGE_COLUMNS`, one row per surge."""
    return pa.table(
        {
            "surge_id": pa.array([s.surge_id for s in surges], pa.string()),
            "campaign": pa.array([s.campaign for s in surges], pa.string()),
            "kind": pa.array([s.kind for s in surges], pa.string()),
            "key": pa.array([s.key for s in surges], pa.string()),
            "start_ms": pa.array([s.start_ms for s in surges], pa.int64()),
            "peak_ms": pa.array([s.peak_ms for s in surges], pa.int64()),
            "end_ms": pa.array([s.end_ms for s in surges], pa.int64()),
            "size": pa.array([s.size for s in surges], pa.float64()),
            "lead_ms": pa.array([s.lead_ms for s in surges], pa.int64()),
        }
    )
