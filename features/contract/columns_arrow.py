"""The fast loader of `features.contract.columns`: the whole batch through Arrow's JSON reader
(C++), straight into columns, with a strict schema.

It takes a batch only when that cannot change the meaning of any record; otherwise it returns
None and the general loader (`contract_columns_orjson`) takes the batch:

- each record is one line that starts with `{` and ends with `}`, and the reader returns one row
  per record (so rows and records line up);
- the bytes are valid UTF-8 (checked here: the reader does not);
- the reader refuses what `orjson` refuses (bad JSON, lone surrogate escapes, duplicate
  keys, a number too big for a double) and, with the strict schema, any field or sensor other
  than the usual ones (`extra`, a CSV replay's sensors) or a value of another JSON type.

What it accepts that the contract does not (NaN and Infinity literals, null where a field is
missing or not allowed, a number spelled `-0`) is suspect here and decided by `parse_reading`.
Numbers are parsed with correct rounding, as `orjson` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from features.contract import READING_SCHEMA, ReadingContract
from features.contract.columns_checks import TEMPLATE, RawColumns
from features.contract.fields import MAX_READING_BYTES

_ENVELOPE: Final = ("schema", "event_id", "ts", "device_id", "site", "machine_type")
_parse_options: dict[tuple[str, ...], pj.ParseOptions] = {}


def _parse_for(sensors: tuple[str, ...]) -> pj.ParseOptions:
    """The reader's strict schema, generated from a contract's sensor names (cached)."""
    opts = _parse_options.get(sensors)
    if opts is None:
        schema = pa.schema(
            [(k, pa.string()) for k in _ENVELOPE]
            + [("values", pa.struct([(s, pa.float64()) for s in sensors]))]
        )
        opts = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="error")
        _parse_options[sensors] = opts
    return opts


def _lines(values: Sequence[Any]) -> bytes | None:
    """The records joined by newlines, if each is exactly one `{...}` line of UTF-8 bytes."""
    n = len(values)
    try:
        lengths = np.fromiter(map(len, values), dtype=np.int64, count=n)
        joined = b"\n".join(values)
    except TypeError:  # str, None...: not bytes-like
        return None
    if lengths.max() > MAX_READING_BYTES or lengths.min() < 2:
        return None
    buf = np.frombuffer(joined, dtype=np.uint8)
    if np.count_nonzero(buf == 10) != n - 1:  # a newline inside a record
        return None
    starts = np.zeros(n, dtype=np.int64)
    np.cumsum(lengths[:-1] + 1, out=starts[1:])
    if (buf[starts] != 123).any() or (buf[starts + lengths - 1] != 125).any():  # { and }
        return None
    if not joined.isascii():  # Arrow's reader does not check UTF-8; orjson (the contract) does
        try:
            joined.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return joined


def _strings(col: pa.ChunkedArray, filler: str, suspect: np.ndarray) -> pa.StringArray:
    arr = col.combine_chunks()
    if arr.null_count:
        suspect |= arr.is_null().to_numpy(zero_copy_only=False)
        arr = arr.fill_null(filler)
    out: pa.StringArray = arr
    return out


def load_arrow(values: Sequence[Any], contract: ReadingContract) -> RawColumns | None:
    """The batch as columns through Arrow's JSON reader, or None when it cannot take it."""
    n = len(values)
    if not contract.sensors:
        return None
    joined = _lines(values) if n else None
    if joined is None:
        return None
    read = pj.ReadOptions(use_threads=False, block_size=max(len(joined) + 1, 1 << 20))
    try:
        table = pj.read_json(
            pa.py_buffer(joined), read_options=read, parse_options=_parse_for(contract.sensors)
        )
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return None
    if table.num_rows != n:
        return None
    suspect = np.zeros(n, dtype=bool)
    schema = table.column("schema")
    suspect |= ~pc.fill_null(pc.equal(schema, READING_SCHEMA), False).to_numpy(zero_copy_only=False)
    values_col = table.column("values").combine_chunks()
    if values_col.null_count:
        suspect |= values_col.is_null().to_numpy(zero_copy_only=False)
    sensors: dict[str, np.ndarray] = {}
    all_null = np.ones(n, dtype=bool)
    for name in contract.sensors:
        col = pc.struct_field(values_col, name)
        null = col.is_null().to_numpy(zero_copy_only=False)
        all_null &= null
        arr = col.to_numpy(zero_copy_only=False).astype(np.float64, copy=True)
        arr[null] = np.nan
        suspect |= np.isnan(arr) & ~null  # a NaN literal
        sensors[name] = arr
    suspect |= all_null  # `{}` or only nulls (or absent): parse_reading tells which
    return RawColumns(
        event_id=_strings(table.column("event_id"), TEMPLATE["event_id"], suspect),
        ts=_strings(table.column("ts"), TEMPLATE["ts"], suspect),
        device_id=_strings(table.column("device_id"), TEMPLATE["device_id"], suspect),
        site=_strings(table.column("site"), "", suspect),
        machine_type=_strings(table.column("machine_type"), "", suspect),
        sensors=sensors,
        suspect=suspect,
    )
