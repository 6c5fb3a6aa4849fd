"""Per-device state of the compiled kernel (`features.engine.state`) as bytes, and back.

One record holds everything the kernel keeps for one device, so that a device's state can be
written when it changed and restored into another process (the scorer's state snapshots,
`streaming.serving.snapshots`): its max event time and window starts, the window sums, the
live panes (tag and sums; dead panes are not stored), the lateness buffer, the min/max deques
and its event ids still within the dedup horizon. Layout, little-endian, then zlib (level 1):

    magic b"EDS1" | int64 header[9 + 2S]: S, W, P, V, live panes, buffered readings, event ids,
    MX, crc32 of the body | int64 deque lengths[2S] | body: PLO[W] | sums[W*V] | ptag[P] |
    pane[live*V] | bts[n] | bx[n*S] (float64) | qts[q] | qv[q] (float64) | ids[e*2]

A record whose magic, shape (S, W, P, V: the plan's) or checksum does not match raises
`SnapshotError`: the caller then rebuilds the state another way. The plan itself (the feature
set's version) is checked by the caller, once per snapshot.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from features.engine import state as nb
from features.engine.pools import KernelState

MAGIC = b"EDS1"
_H = 9  # header fields before the deque lengths


class SnapshotError(ValueError):
    """A device record that cannot be restored (corrupt, or made for another layout)."""


@dataclass(frozen=True, slots=True)
class _Device:
    mx: int
    plo: np.ndarray
    sums: np.ndarray
    ptag: np.ndarray
    live: np.ndarray
    pane: np.ndarray
    bts: np.ndarray
    bx: np.ndarray
    qn: np.ndarray
    qts: np.ndarray
    qv: np.ndarray
    ids: np.ndarray


def export_slots(st: KernelState, slots: Sequence[int]) -> list[bytes]:
    """One record per slot of `slots` (live devices), in order."""
    if not slots:
        return []
    S, W = st.S, st.W
    arr = np.asarray(slots, dtype=np.int64)
    want = np.zeros(len(st.dev), dtype=np.bool_)
    want[arr] = True
    ids, starts = nb.ids_of_slots(st.ht, st.dev, st.horizon, want)
    out: list[bytes] = []
    for s in arr.tolist():
        dev = st.dev[s]
        ptag = st.ptag[s]
        live = ptag != nb.NEVER
        off, lo, hi = int(dev[nb.BOFF]), int(dev[nb.BLO]), int(dev[nb.BHI])
        qm = st.qm[2 * S * s : 2 * S * (s + 1)]
        qlo = qm[:, nb.QOFF] + qm[:, nb.QLO]
        qhi = qm[:, nb.QOFF] + qm[:, nb.QHI]
        qidx = np.concatenate([np.arange(a, b) for a, b in zip(qlo, qhi, strict=True)])
        e = ids[starts[s] : starts[s + 1]]
        body = b"".join(
            (
                dev[nb.PLO :].tobytes(),
                st.sums[s].tobytes(),
                ptag.tobytes(),
                st.pane[s][live].tobytes(),
                st.bts[off + lo : off + hi].tobytes(),
                st.bx[off + lo : off + hi].tobytes(),
                st.qts[qidx].tobytes(),
                st.qv[qidx].tobytes(),
                e.tobytes(),
            )
        )
        head = np.array(
            [S, W, st.P, st.sums.shape[2], int(live.sum()), hi - lo, len(e), int(dev[nb.MX]),
             zlib.crc32(body)],
            dtype=np.int64,
        )  # fmt: skip
        qn = (qhi - qlo).astype(np.int64)
        out.append(MAGIC + zlib.compress(head.tobytes() + qn.tobytes() + body, 1))
    return out


def import_records(st: KernelState, records: Sequence[bytes]) -> list[int]:
    """Restore devices from their records into new slots of `st`; returns the slots, in
    order. Nothing is changed when a record is bad (`SnapshotError`)."""
    parsed = [_parse(st, r) for r in records]  # every record checked before any is applied
    if not parsed:
        return []
    n_ids = sum(len(p.ids) for p in parsed)
    need = int(st.ctl[0]) + n_ids
    if need * 100 > len(st.ht) * 45:
        st._rehash(len(st.ht) * 2)
        while need * 100 > len(st.ht) * 45:
            st._rehash(len(st.ht) * 2)
    S = st.S
    # room for all of them at once (growing the pools device by device copies them each time)
    st._reserve_slots(st.n_slots + max(0, len(parsed) - len(st.free)))
    buf = sum(max(32, 2 * len(p.bts)) for p in parsed)
    if st.b_used + buf > len(st.bts):
        st._repack_buffers(buf)
    dq = sum(2 * S * max(16, 2 * int(p.qn.max())) for p in parsed)
    if st.q_used + dq > len(st.qts):
        st._repack_deques(dq)
    slots: list[int] = []
    all_ids: list[np.ndarray] = []
    for p in parsed:
        bts, qn = p.bts, p.qn
        s = st.new_slot(buffer_cap=max(32, 2 * len(bts)), deque_cap=max(16, 2 * int(qn.max())))
        dev = st.dev[s]
        dev[nb.MX] = p.mx
        dev[nb.PLO :] = p.plo
        st.sums[s] = p.sums
        st.ptag[s] = p.ptag
        st.pane[s] = 0
        st.pane[s][p.live] = p.pane
        off = int(dev[nb.BOFF])
        st.bts[off : off + len(bts)] = bts
        st.bx[off : off + len(bts)] = p.bx
        dev[nb.BLO] = 0
        dev[nb.BHI] = len(bts)
        pos = 0
        for j in range(2 * S):
            d = 2 * S * s + j
            k = int(qn[j])
            qoff = int(st.qm[d, nb.QOFF])
            st.qts[qoff : qoff + k] = p.qts[pos : pos + k]
            st.qv[qoff : qoff + k] = p.qv[pos : pos + k]
            st.qm[d, nb.QLO] = 0
            st.qm[d, nb.QHI] = k
            pos += k
        ids = p.ids
        if len(ids):
            all_ids.append(np.column_stack([ids, np.full(len(ids), s, dtype=np.int64)]))
        slots.append(s)
    if all_ids:
        st.ctl[0] += nb.insert_ids(st.ht, np.concatenate(all_ids))
    return slots


def _parse(st: KernelState, record: bytes) -> _Device:
    if not record.startswith(MAGIC):
        raise SnapshotError("not a device state record (bad magic)")
    try:
        raw = zlib.decompress(record[len(MAGIC) :])
    except zlib.error as exc:
        raise SnapshotError(f"device state record does not decompress: {exc}") from exc
    S, W, P, V = st.S, st.W, st.P, st.sums.shape[2]
    nh = (_H + 2 * S) * 8
    if len(raw) < nh:
        raise SnapshotError("device state record too short")
    head = np.frombuffer(raw, dtype=np.int64, count=_H)
    if tuple(int(x) for x in head[:4]) != (S, W, P, V):
        raise SnapshotError(
            f"device state made for another layout (S, W, P, V = {tuple(head[:4].tolist())}, "
            f"expected {(S, W, P, V)})"
        )
    live_n, n, e, mx, crc = (int(x) for x in head[4:9])
    qn = np.frombuffer(raw, dtype=np.int64, count=2 * S, offset=_H * 8)
    body = raw[nh:]
    if zlib.crc32(body) != crc:
        raise SnapshotError("device state record fails its checksum")
    q = int(qn.sum())
    sizes = [W, W * V, P, live_n * V, n, n * S, q, q, 2 * e]
    if min(live_n, n, e, q) < 0 or sum(sizes) * 8 != len(body):
        raise SnapshotError("device state record has inconsistent lengths")
    parts: list[np.ndarray] = []
    pos = 0
    for i, k in enumerate(sizes):
        dtype = np.float64 if i in (5, 7) else np.int64
        parts.append(np.frombuffer(body, dtype=dtype, count=k, offset=pos))
        pos += 8 * k
    plo, sums, ptag, pane, bts, bx, qts, qv, ids = parts
    live = ptag != nb.NEVER
    if int(live.sum()) != live_n:
        raise SnapshotError("device state record has inconsistent panes")
    return _Device(
        mx=mx,
        plo=plo,
        sums=sums.reshape(W, V),
        ptag=ptag,
        live=live,
        pane=pane.reshape(live_n, V),
        bts=bts,
        bx=bx.reshape(n, S),
        qn=qn,
        qts=qts,
        qv=qv,
        ids=ids.reshape(e, 2),
    )
