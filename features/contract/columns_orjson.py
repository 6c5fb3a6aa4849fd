"""The general loader of `features.contract.columns`: one `orjson.loads` per record, then every
field pulled out of the dicts as a column. Takes any batch; anything unusual is suspect."""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import Any, Final

import numpy as np
import orjson

from features.contract import READING_SCHEMA, ReadingContract
from features.contract.columns_checks import TEMPLATE, RawColumns, string_array, template_values
from features.contract.fields import MAX_READING_BYTES

_FIELDS: Final = ("schema", "event_id", "ts", "device_id", "site", "machine_type", "values")
_REQUIRED: Final = ("schema", "event_id", "ts", "device_id", "values")
_GETTERS: Final = tuple(itemgetter(k) for k in _FIELDS)
_NUMBER_TYPES: Final = frozenset({float, int, type(None)})


def _docs(values: Sequence[Any], suspect: np.ndarray) -> list[Any]:
    """One `orjson.loads` per record; a record that is not a JSON object within the size limit
    is suspect (its row holds the template meanwhile)."""
    loads = orjson.loads
    docs: list[Any] | None = None
    try:
        if max(map(len, values), default=0) <= MAX_READING_BYTES:
            docs = list(map(loads, values))
    except (TypeError, ValueError):  # not bytes, or bad JSON (orjson.JSONDecodeError)
        docs = None
    if docs is None:  # record by record
        docs = []
        for raw in values:
            try:
                docs.append(loads(raw) if len(raw) <= MAX_READING_BYTES else None)
            except (TypeError, ValueError):
                docs.append(None)
    if set(map(type, docs)) != {dict}:
        for i, d in enumerate(docs):
            if type(d) is not dict:
                suspect[i] = True
                docs[i] = TEMPLATE
    return docs


def _fields(docs: list[dict[str, Any]], suspect: np.ndarray) -> list[list[Any]]:
    try:
        cols = [list(map(get, docs)) for get in _GETTERS]
    except KeyError:  # optional fields missing (default ""), or required ones (suspect)
        cols = [[d.get(k, "") for d in docs] for k in _FIELDS]
        for i, d in enumerate(docs):
            if not all(k in d for k in _REQUIRED):
                suspect[i] = True
    if set(map(len, docs)) - {7}:  # other keys, perhaps `extra`: checked by parse_reading
        for i, d in enumerate(docs):
            if d.get("extra") is not None:
                suspect[i] = True
    schema = cols[0]
    if schema.count(READING_SCHEMA) != len(schema):
        for i, s in enumerate(schema):
            if s != READING_SCHEMA:
                suspect[i] = True
    return cols


def _strings(col: list[Any], filler: str, suspect: np.ndarray) -> list[Any]:
    if set(map(type, col)) != {str}:
        for i, x in enumerate(col):
            if type(x) is not str:
                suspect[i] = True
                col[i] = filler
    return col


def _sensors(
    vals: list[Any], suspect: np.ndarray, contract: ReadingContract
) -> dict[str, np.ndarray]:
    """The contract's sensors as float64 columns (null -> NaN); a row that is not exactly
    those sensors with numbers (or null) is suspect."""
    k = len(contract.sensors)
    if set(map(type, vals)) != {dict} or set(map(len, vals)) != {k}:
        stand_in = template_values(contract)
        for i, v in enumerate(vals):
            if type(v) is not dict or len(v) != k:
                suspect[i] = True
                vals[i] = stand_in
    out: dict[str, np.ndarray] = {}
    for name in contract.sensors:
        get = itemgetter(name)
        try:
            col = list(map(get, vals))
        except KeyError:  # a row with another sensor instead of this one
            col = []
            for i, v in enumerate(vals):
                if name not in v:
                    suspect[i] = True
                col.append(v.get(name))
        if not set(map(type, col)) <= _NUMBER_TYPES:  # bool, str, list...
            for i, x in enumerate(col):
                if type(x) not in _NUMBER_TYPES:
                    suspect[i] = True
                    col[i] = None
        try:
            out[name] = np.array(col, dtype=np.float64)  # None -> NaN
        except OverflowError:  # an integer beyond float64
            for i, x in enumerate(col):
                if type(x) is int and abs(x) > 1e300:
                    suspect[i] = True
                    col[i] = None
            out[name] = np.array(col, dtype=np.float64)
    return out


def load_orjson(values: Sequence[Any], contract: ReadingContract) -> RawColumns:
    """Any batch of records as columns (rows that are not the plain common case are suspect)."""
    suspect = np.zeros(len(values), dtype=bool)
    docs = _docs(values, suspect)
    _, event_id, ts, device_id, site, machine_type, vals = _fields(docs, suspect)
    del docs
    return RawColumns(
        event_id=string_array(_strings(event_id, TEMPLATE["event_id"], suspect)),
        ts=string_array(_strings(ts, TEMPLATE["ts"], suspect)),
        device_id=string_array(_strings(device_id, TEMPLATE["device_id"], suspect)),
        site=string_array(_strings(site, "", suspect)),
        machine_type=string_array(_strings(machine_type, "", suspect)),
        sensors=_sensors(vals, suspect, contract),
        suspect=suspect,
    )
