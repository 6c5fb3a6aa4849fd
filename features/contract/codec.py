"""A small codec derived from each event dataclass's type hints (for the low-volume events).

The sensor reading has its own hand-tuned path in `features.contract`; the other events are few
per second, so one generic, still hand-written, validator serves them all.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from features.contract.fields import (
    MAX_ID_LEN,
    ContractError,
    check_bool,
    check_float,
    check_id,
    check_int,
    check_list,
    check_map,
    check_name,
    check_text,
    check_ts_ms,
    check_uuid,
    format_ts,
    parse_ts,
)

Decode = Callable[[Any, str], Any]
Encode = Callable[[Any], Any]

#: Fields holding free text (may be empty, up to MAX_TEXT_LEN); other strings are identifiers.
_TEXT_FIELDS = frozenset({"text", "fallback_reason", "reasons"})
#: Fields that are fractions in [0, 1].
_UNIT_FIELDS = frozenset(
    {"confidence", "agreement", "champion_alert_rate", "challenger_alert_rate"}
)


@dataclasses.dataclass(frozen=True, slots=True)
class _Field:
    attr: str
    key: str
    required: bool
    default: Callable[[], Any]
    decode: Decode
    encode: Encode


@dataclasses.dataclass(frozen=True, slots=True)
class Codec:
    cls: type
    fields: tuple[_Field, ...]

    def decode(self, doc: object, path: str = "") -> Any:
        doc = check_map(doc, path or "$", max_items=4 * len(self.fields) + 8)
        kwargs: dict[str, Any] = {}
        for f in self.fields:
            where = f"{path}.{f.key}" if path else f.key
            if f.key in doc:
                kwargs[f.attr] = f.decode(doc[f.key], where)
            elif f.required:
                raise ContractError(where, "required field is missing")
            else:
                kwargs[f.attr] = f.default()
        return self.cls(**kwargs)

    def encode(self, obj: Any) -> dict[str, Any]:
        if type(obj) is not self.cls:
            raise ContractError("$", f"expected a {self.cls.__name__}, got {type(obj).__name__}")
        return {f.key: f.encode(getattr(obj, f.attr)) for f in self.fields}


def _identity(v: Any) -> Any:
    return v


def _str_codec(name: str, required: bool) -> Decode:
    if name in _TEXT_FIELDS:
        return check_text
    if name.endswith("event_id"):
        return check_uuid
    allow_empty = not required

    def dec(v: Any, where: str) -> str:
        return check_id(v, where, allow_empty=allow_empty)

    return dec


def _float_codec(name: str, nullable: bool) -> Decode:
    lo, hi = (0.0, 1.0) if name in _UNIT_FIELDS else (-1e15, 1e15)

    def dec(v: Any, where: str) -> float | None:
        return check_float(v, where, lo, hi, nullable=nullable)

    return dec


def _enum_codec(choices: tuple[str, ...]) -> Decode:
    def dec(v: Any, where: str) -> str:
        if type(v) is not str or v not in choices:
            raise ContractError(where, f"expected one of {list(choices)}, got {v!r:.60}")
        return v

    return dec


def _list_codec(item: Decode) -> Decode:
    def dec(v: Any, where: str) -> list[Any]:
        return [item(x, f"{where}[{i}]") for i, x in enumerate(check_list(v, where))]

    return dec


def _map_codec(value: Decode, key: Decode) -> Decode:
    def dec(v: Any, where: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, x in check_map(v, where).items():
            key(k, where)
            out[k] = value(x, f"{where}.{k}")
        return out

    return dec


def _map_value_id(v: Any, where: str) -> str:
    return check_id(v, where, allow_empty=True)


def _type_codec(name: str, tp: Any, required: bool) -> tuple[Decode, Encode]:
    """Decoder and encoder for one annotated type (the field `name` picks constraints)."""
    origin, args = get_origin(tp), get_args(tp)
    if tp is str:
        return _str_codec(name, required), _identity
    if tp is bool:
        return check_bool, _identity
    if tp is int:
        return check_int, _identity
    if tp is float:
        return _float_codec(name, nullable=False), _identity
    if origin in (Union, types.UnionType) and set(args) == {float, type(None)}:
        return _float_codec(name, nullable=True), _identity
    if origin is Literal:
        return _enum_codec(tuple(args)), _identity
    if origin is list:
        (item,) = args
        if dataclasses.is_dataclass(item):
            sub = codec_for(item)  # type: ignore[arg-type]
            return _list_codec(sub.decode), lambda v: [sub.encode(x) for x in v]
        if item is str:
            return _list_codec(check_text if name in _TEXT_FIELDS else _map_value_id), list
    if origin is dict and args[0] is str:
        if args[1] is float:
            return _map_codec(_float_codec(name, nullable=False), check_name), dict
        if args[1] is str:
            return _map_codec(_map_value_id, _map_key_id), dict
    raise TypeError(f"no contract codec for field {name}: {tp!r}")


def _map_key_id(v: Any, where: str) -> str:
    if type(v) is not str or not 0 < len(v) <= MAX_ID_LEN or not v.isprintable():
        raise ContractError(where, f"invalid key {v!r:.60}")
    return v


def _default_of(f: dataclasses.Field[Any]) -> tuple[bool, Callable[[], Any]]:
    if f.default is not dataclasses.MISSING:
        value = f.default
        return False, lambda: value
    if f.default_factory is not dataclasses.MISSING:
        return False, f.default_factory
    return True, lambda: None


_codecs: dict[type, Codec] = {}


def codec_for(cls: type) -> Codec:
    """The codec of an event dataclass, built once from its type hints."""
    codec = _codecs.get(cls)
    if codec is not None:
        return codec
    hints = get_type_hints(cls)
    built: list[_Field] = []
    for f in dataclasses.fields(cls):
        required, default = _default_of(f)
        tp = hints[f.name]
        if f.name.endswith("_ms") and tp is int:
            key = f.name[:-3]
            built.append(_Field(f.name, key, required, default, parse_ts, _encode_ts))
            continue
        dec, enc = _type_codec(f.name, tp, required)
        built.append(_Field(f.name, f.name, required, default, dec, enc))
    codec = Codec(cls, tuple(built))
    _codecs[cls] = codec
    return codec


def _encode_ts(v: Any) -> str:
    return format_ts(check_ts_ms(v, "ts"))
