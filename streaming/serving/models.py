"""Model slots of the scorer: one per served model name, and the swaps into them.

A swap the watcher queued is applied between two transactions, and only if the version is
still the one its alias names (the alias may have moved while the version loaded): the scorer
never serves a version no alias points to.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from streaming.serving.config import ServeConfig
from streaming.serving.fallback import FallbackRules
from streaming.serving.scoring import ModelSlot
from streaming.serving.watcher import ModelWatcher, Swap

log = logging.getLogger(__name__)


def make_slots(cfg: ServeConfig) -> dict[str, ModelSlot]:
    rules = FallbackRules.from_spec(cfg.dataset)  # the dataset's operating limits and units
    slots = {n: ModelSlot(n, rules=rules) for n in cfg.served_models}
    for s in slots.values():
        s.breaker.failure_threshold = cfg.breaker_failures
        s.breaker.open_seconds = cfg.breaker_open_s
        s.shadow_breaker.failure_threshold = cfg.breaker_failures
        s.shadow_breaker.open_seconds = cfg.breaker_open_s
        s.timeout_s = cfg.model_timeout_s
        s.shadow_sample = cfg.shadow_sample
    return slots


def apply_swaps(
    watcher: ModelWatcher,
    slots: dict[str, ModelSlot],
    on_swap: Callable[[Swap, float], None],
) -> None:
    """Apply every queued swap whose version its alias still names."""
    while True:
        try:
            swap = watcher.swaps.get_nowait()
        except Exception:
            return
        if not watcher.is_wanted(swap.name, swap.role, swap.model.version):
            log.info(
                "not applying %s %s version %s: the alias has moved on",
                swap.name,
                swap.role,
                swap.model.version,
            )
            continue
        slot = slots[swap.name]
        if swap.role == "champion":
            slot.set_champion(swap.model)
            if slot.challenger is not None and slot.challenger.version == swap.model.version:
                slot.set_challenger(None)
        elif slot.champion is None or slot.champion.version != swap.model.version:
            slot.set_challenger(swap.model)
        delay = time.monotonic() - swap.seen_at
        on_swap(swap, delay)
        log.info(
            "now serving %s %s version %s (%s, %.2fs after noticed)",
            swap.name,
            swap.role,
            swap.model.version,
            swap.trigger,
            delay,
        )
