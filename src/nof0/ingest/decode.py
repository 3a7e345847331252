"""The edge of ingestion: JSON Lines and in-process records become validated events, or rejections
that name the line, the field and the value (issue "Bad input").

Decoding is one typed ``msgspec`` pass per line (the fast path); only a failing line is decoded a
second time, generically, to find the offending value for the message.
"""

from __future__ import annotations

import json
import re
import typing
from dataclasses import dataclass
from typing import Any

import msgspec

from nof0.ingest.events import EVENT_TYPES, ConversationMessage, Event, EventError, Fill, PriceTick, check_event

__all__ = ["Rejection", "Rejected", "decode_line", "validate_event", "encode_event"]

_DECODER = msgspec.json.Decoder(Event)
_ENCODER = msgspec.json.Encoder()
_MSG = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_MISSING = re.compile(r"^Object missing required field `([^`]*)`$")
_UNKNOWN = re.compile(r"^Object contains unknown field `([^`]*)`$")
_PATH_TOKEN = re.compile(r"\.([^.\[]+)|\[(\d+)\]")
_RAW_LIMIT = 200  # characters of a value quoted back in a message
# Decoded lines of these hot types need no check beyond their field types (JSON cannot carry NaN).
_NO_CHECK = (PriceTick, Fill, ConversationMessage)

# msgspec's wording for our constrained types -> what the producer should do about it
_FRIENDLY = (
    (re.compile(r"^Expected `str` matching regex '\^\[A-Za-z0-9\._@/-\]\{1,64\}\$'$"),
     "must be 1-64 characters of letters, digits and . _ - @ / (ids become Redis key parts)"),
    (re.compile(r"^Expected `int` [<>]= (946684800000|4102444800000)$"),
     "must be milliseconds since epoch between 2000-01-01 and 2100-01-01"),
    (re.compile(r"^Expected `float` [<>]= (946684800\.0|4102444800\.0)$"),
     "must be seconds since epoch between 2000-01-01 and 2100-01-01"),
    (re.compile(r"^Number out of range$"), "must be a finite number"),
    (re.compile(r"^Expected `float` <= 1e\+15$"), "must be a finite number below 1e15"),
)
_BOUND = re.compile(r"^Expected `(?:float|int)` ([<>]=?) (\S+)$")


@dataclass(frozen=True, slots=True)
class Rejection:
    """One rejected event: where it was, what was wrong, and its raw text for the dead-letter table."""

    line: int | None
    event_type: str | None
    field: str | None
    value: Any
    reason: str
    raw: str

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line is not None else "event"
        kind = f" ({self.event_type})" if self.event_type else ""
        shown = "" if self.reason == "is required" else f"={_show(self.value)}"
        what = f" {self.field}{shown}:" if self.field else ""
        return f"{where}{kind}:{what} {self.reason}"


class Rejected(Exception):
    def __init__(self, rejection: Rejection) -> None:
        self.rejection = rejection
        super().__init__(str(rejection))


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _RAW_LIMIT else text[: _RAW_LIMIT - 3] + "..."


def _lookup(doc: Any, path: str) -> Any:
    node = doc
    for key, index in _PATH_TOKEN.findall(path):
        try:
            node = node[int(index)] if index else node[key]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def _friendly(message: str) -> str:
    for pattern, text in _FRIENDLY:
        if pattern.match(message):
            return text
    if bound := _BOUND.match(message):
        limit = bound.group(2).removesuffix(".0")
        return f"must be a number {bound.group(1)} {limit}"
    return message


def _generic(raw: bytes | str) -> Any:
    """The line as plain JSON values, to quote the offending value (out-of-range numbers included)."""
    try:
        return msgspec.json.decode(raw)
    except msgspec.MsgspecError:
        try:
            return json.loads(raw)
        except ValueError:
            return None


def _from_validation_error(exc: msgspec.ValidationError, doc: Any, line: int | None, raw: str) -> Rejection:
    m = _MSG.match(str(exc))
    message, path = (m.group("msg"), m.group("path") or "") if m else (str(exc), "")
    event_type = doc.get("type") if isinstance(doc, dict) and isinstance(doc.get("type"), str) else None
    field = path.lstrip(".") or None
    value = _lookup(doc, path) if path else doc
    if missing := _MISSING.match(message):
        field = f"{field}.{missing.group(1)}" if field else missing.group(1)
        return Rejection(line, event_type, field, None, "is required", raw)
    if unknown := _UNKNOWN.match(message):
        name = unknown.group(1)
        field = f"{field}.{name}" if field else name
        return Rejection(line, event_type, field, _lookup(doc, path + "." + name), "unknown field", raw)
    if message.startswith("Invalid enum value") and (allowed := _literal_values(event_type, field)):
        return Rejection(line, event_type, field, value, f"must be one of {', '.join(allowed)}", raw)
    if field == "type":
        return Rejection(line, None, "type", value, f"unknown event type (known: {', '.join(EVENT_TYPES)})", raw)
    if not path and message.startswith("Expected `object`"):
        return Rejection(line, None, None, None, "each line must be one JSON object", raw)
    return Rejection(line, event_type, field, value, _friendly(message), raw)


def _literal_values(event_type: str | None, field: str | None) -> tuple[str, ...]:
    cls = EVENT_TYPES.get(event_type or "")
    if cls is None or not field:
        return ()
    hint = typing.get_type_hints(cls).get(field)
    for arg in (hint, *typing.get_args(hint)):
        if typing.get_origin(arg) is typing.Literal:
            return typing.get_args(arg)
    return ()


def _checked(ev: Any, line: int | None, raw: str) -> Any:
    try:
        check_event(ev)
    except EventError as exc:
        raise Rejected(Rejection(line, ev.__struct_config__.tag, exc.field, exc.value, exc.reason, raw)) from None
    return ev


def decode_line(raw: bytes | str, line: int | None) -> Event:
    """One JSON Lines record -> a validated event, or :class:`Rejected`."""
    try:
        ev = _DECODER.decode(raw)
    except msgspec.ValidationError as exc:
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        raise Rejected(_from_validation_error(exc, _generic(raw), line, text)) from None
    except msgspec.DecodeError as exc:
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        raise Rejected(Rejection(line, None, None, None, f"not valid JSON: {exc}", text)) from None
    return _checked(ev, line, raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw) if _needs_check(ev) else ev


def _needs_check(ev: Any) -> bool:
    # the hot event types (ticks, fills, messages) have no cross-field rule beyond their types
    return not isinstance(ev, _NO_CHECK)


def validate_event(ev: Any, line: int | None) -> Event:
    """An in-process record gets the same validation as a decoded line (structs do not validate on init)."""
    tag = getattr(getattr(ev, "__struct_config__", None), "tag", None)
    if tag not in EVENT_TYPES or type(ev) is not EVENT_TYPES[tag]:
        raise Rejected(Rejection(line, None, None, None, f"not an ingest event: {type(ev).__name__}", repr(ev)[:1000]))
    doc = msgspec.to_builtins(ev)
    try:
        checked = msgspec.convert(doc, type(ev))
    except msgspec.ValidationError as exc:
        raise Rejected(_from_validation_error(exc, doc, line, _raw_of(doc))) from None
    return _checked(checked, line, _raw_of(doc))


def _raw_of(doc: Any) -> str:
    return _ENCODER.encode(doc).decode()


def encode_event(ev: Any) -> bytes:
    """The JSON Lines form of an event (without the newline)."""
    return _ENCODER.encode(ev)
