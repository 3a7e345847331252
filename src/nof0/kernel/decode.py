"""The edge of ingestion: JSON Lines and in-process records become validated events, or rejections
that name the line, the field and the value (issue "Bad input").

Decoding is one typed ``msgspec`` pass per line (the fast path); only a failing line is decoded a
second time, generically, to find the offending value for the message. Nothing a producer sends can
raise out of here: an input that breaks a decoder (nesting beyond the recursion limit, text that is not
Unicode, anything unforeseen) becomes a rejection too.
"""

from __future__ import annotations

import json
import re
import typing
from dataclasses import dataclass
from typing import Any

import msgspec

from nof0.kernel.events import (
    EVENT_TYPES, SAFE_ID, ConversationMessage, Event, EventError, Fill, PriceTick, check_event,
)
from nof0.kernel.shape import check_builtins, check_shape, container_fields, deep_field

__all__ = ["Rejection", "Rejected", "decode_line", "validate_event", "encode_event"]

_DECODER = msgspec.json.Decoder(Event)
_ENCODER = msgspec.json.Encoder()
_MSG = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_MISSING = re.compile(r"^Object missing required field `([^`]*)`$")
_UNKNOWN = re.compile(r"^Object contains unknown field `([^`]*)`$")
_PATH_TOKEN = re.compile(r"\.([^.\[]+)|\[(\d+)\]")
_RAW_LIMIT = 200  # characters of a value quoted back in a message
# Decoded lines of these hot types need no check beyond their field types (JSON cannot carry NaN)...
_NO_CHECK = (PriceTick, Fill, ConversationMessage)
# ... and these have no free-form JSON either (whose depth is checked)
_PLAIN = frozenset(t for t in _NO_CHECK if not container_fields(t))

# msgspec's wording for our constrained types -> what the producer should do about it
_FRIENDLY = (
    (re.compile("^Expected `str` matching regex " + re.escape(repr(SAFE_ID)) + "$"),
     "must be 1-64 characters of letters, digits and . _ - @ / (ids become Redis key parts)"),
    (re.compile(r"^Expected `int` [<>]= (946684800000|4102444800000)$"),
     "must be milliseconds since epoch between 2000-01-01 and 2100-01-01"),
    (re.compile(r"^Expected `float` [<>]= (946684800\.0|4102444800\.0)$"),
     "must be seconds since epoch between 2000-01-01 and 2100-01-01"),
    (re.compile(r"^Number out of range$"), "must be a finite number"),
    (re.compile(r"^Expected `float` <= 1e\+15$"), "must be a finite number up to 1e15"),
    (re.compile(r"^Expected `float` <= 1000000000000\.0$"), "must be a finite number up to 1e12"),
)
_BOUND = re.compile(r"^Expected `(?:float|int)` ([<>]=?) (\S+)$")


@dataclass(frozen=True, slots=True)
class Rejection:
    """One rejected event: where it was, what was wrong, and its raw text for the dead-letter table.

    ``line`` is its number in the input (a line, an in-process event, a file entry); ``where`` names it
    the way its producer would look for it (``line 4``, ``event 2``, ``trades.json trades[12]``).
    ``raw_md5`` is given when ``raw`` is only the start of a text too long to keep (its md5 is the
    whole text's).
    """

    line: int | None
    event_type: str | None
    field: str | None
    value: Any
    reason: str
    raw: str
    where: str | None = None
    raw_md5: str | None = None

    def __str__(self) -> str:
        where = self.where or (f"line {self.line}" if self.line is not None else "event")
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
    except (msgspec.MsgspecError, RecursionError):
        try:
            return json.loads(raw)
        except (ValueError, RecursionError):
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


def _checked(ev: Any, line: int | None, raw: str, *, check: bool = True, strings: bool = True) -> Any:
    try:
        check_shape(ev, strings=strings)
        if check:
            check_event(ev)
    except EventError as exc:
        raise Rejected(Rejection(line, ev.__struct_config__.tag, exc.field, exc.value, exc.reason, raw)) from None
    return ev


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw


def decode_line(raw: bytes | str, line: int | None) -> Event:
    """One JSON Lines record -> a validated event, or :class:`Rejected` (never another exception)."""
    try:
        try:
            ev = _DECODER.decode(raw)
        except msgspec.ValidationError as exc:
            raise Rejected(_from_validation_error(exc, _generic(raw), line, _text(raw))) from None
        except msgspec.DecodeError as exc:
            raise Rejected(Rejection(line, None, None, None, f"not valid JSON: {exc}", _text(raw))) from None
        # JSON text cannot hold a lone surrogate (the decoder refuses it) and holds a NUL only as \u0000
        nul = (b"\\u0000" if isinstance(raw, bytes) else "\\u0000") in raw
        if not nul and type(ev) in _PLAIN:
            return ev  # a tick: typed fields only, nothing free-form, no cross-field rule
        return _checked(ev, line, _text(raw), check=_needs_check(ev), strings=nul)
    except Rejected:
        raise
    except RecursionError:
        event_type, field = deep_field(_text(raw))
        raise Rejected(Rejection(line, event_type, field, None, "is nested too deeply to decode", _text(raw))) from None
    except Exception as exc:  # noqa: BLE001 - whatever a producer sends is a rejection, never a crash
        raise Rejected(Rejection(line, None, None, None, f"cannot be decoded: {type(exc).__name__}: {exc}",
                                 _text(raw))) from None


def _needs_check(ev: Any) -> bool:
    # the hot event types (ticks, fills, messages) have no cross-field rule beyond their types
    return not isinstance(ev, _NO_CHECK)


def validate_event(ev: Any, line: int | None) -> Event:
    """An in-process record gets the same validation as a decoded line (structs do not validate on init),
    and never raises anything but :class:`Rejected`."""
    tag = getattr(getattr(ev, "__struct_config__", None), "tag", None)
    if tag not in EVENT_TYPES or type(ev) is not EVENT_TYPES[tag]:
        raise Rejected(Rejection(line, None, None, None, f"not an ingest event: {type(ev).__name__}", _repr(ev)))
    try:
        doc = msgspec.to_builtins(ev)
        try:
            check_builtins(doc)  # before anything encodes it: NUL, lone surrogates, depth
        except EventError as exc:
            raise Rejected(Rejection(line, tag, exc.field, exc.value, exc.reason, _repr(ev))) from None
        try:
            checked = msgspec.convert(doc, type(ev))
        except msgspec.ValidationError as exc:
            raise Rejected(_from_validation_error(exc, doc, line, _raw_of(doc))) from None
        return _checked(checked, line, _raw_of(doc), strings=False)
    except Rejected:
        raise
    except RecursionError:
        raise Rejected(Rejection(line, tag, _deep_struct_field(ev), None, "is nested too deeply to encode",
                                 _repr(ev))) from None
    except Exception as exc:  # noqa: BLE001 - a producer's bad record is a rejection, never a crash
        raise Rejected(Rejection(line, tag, None, None, f"cannot be validated: {type(exc).__name__}: {exc}",
                                 _repr(ev))) from None


def _deep_struct_field(ev: Any) -> str | None:
    for name in ev.__struct_fields__:
        try:
            msgspec.to_builtins(getattr(ev, name))
        except RecursionError:
            return name
    return None


def _repr(ev: Any) -> str:
    # repr escapes what JSON text cannot carry (lone surrogates); the dead-letter table caps its length
    try:
        return repr(ev)
    except RecursionError:
        return f"<{type(ev).__name__} nested too deeply to show>"


def _raw_of(doc: Any) -> str:
    return _ENCODER.encode(doc).decode()


def encode_event(ev: Any) -> bytes:
    """The JSON Lines form of an event (without the newline)."""
    return _ENCODER.encode(ev)
