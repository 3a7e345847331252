"""Checks on what an event's text and free-form JSON may hold (issue 3 "Bad input"), beyond their types.

Postgres ``text`` and ``jsonb`` refuse the NUL character, UTF-8 cannot encode a lone surrogate (an
in-process producer can build one; a JSON line cannot: the decoder refuses it), and a deeply nested
object overflows every recursive encoder on the way to the database. Each is rejected here with the
field that holds it, instead of failing later without a field, or crashing the batch.

Walks are iterative, so the checker itself never hits Python's recursion limit.
"""

from __future__ import annotations

import re
import typing
from typing import Any, Iterator

from nof0.kernel.events import EventError

__all__ = ["MAX_DEPTH", "check_shape", "check_builtins", "container_fields", "deep_field"]

MAX_DEPTH = 32  # levels of objects and arrays inside one field (a venue's payloads use fewer than 6)
# A field's own object or array is at depth 0, its first level: depth d is level d + 1.

_BAD_CHAR = re.compile("[\x00\ud800-\udfff]")


def _why(text: str) -> str | None:
    m = _BAD_CHAR.search(text)
    if m is None:
        return None
    if m.group() == "\x00":
        return "contains the NUL character (\\u0000), which Postgres cannot store"
    return f"contains a lone surrogate (\\u{ord(m.group()):04x}), which is not Unicode text"


def _suspect(value: Any, strings: bool) -> bool:
    """Fast check, no paths: is anything inside ``value`` nested too deeply or (with ``strings``) bad text?"""
    stack = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            if _BAD_CHAR.search(node):
                return True
            continue
        if depth >= MAX_DEPTH:
            return True
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in items:
            if strings and isinstance(key, str) and _BAD_CHAR.search(key):
                return True
            if isinstance(child, (dict, list)) or (strings and isinstance(child, str)):
                stack.append((child, depth + 1))
    return False


def _nodes(field: str, value: Any) -> Iterator[tuple[str, Any, int]]:
    """(path, node, depth) of ``value`` and everything inside it, depth first, without recursion."""
    stack = [(field, value, 0)]
    while stack:
        path, node, depth = stack.pop()
        yield path, node, depth
        if isinstance(node, dict):
            stack.extend((f"{path}.{k}", v, depth + 1) for k, v in reversed(node.items()))
        elif isinstance(node, (list, tuple)):
            stack.extend((f"{path}[{i}]", v, depth + 1) for i, v in reversed(list(enumerate(node))))


def _check_value(field: str, value: Any, strings: bool) -> None:
    if not _suspect(value, strings):
        return
    # something is wrong: walk again, with paths, to name it
    for path, node, depth in _nodes(field, value):
        if isinstance(node, (dict, list)) and depth >= MAX_DEPTH:
            raise EventError(field, f"<{depth + 1}+ levels>", f"is nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, dict) and strings:
            for key in node:
                if isinstance(key, str) and (why := _why(key)):
                    raise EventError(f"{path}.{key!r}", key, f"key {why}")
        elif isinstance(node, str) and strings and (why := _why(node)):
            raise EventError(path, node, why)


_CONTAINER_FIELDS: dict[type, tuple[str, ...]] = {}


def container_fields(cls: type) -> tuple[str, ...]:
    """The fields of an event type that can hold objects or arrays (free-form JSON)."""
    if cls not in _CONTAINER_FIELDS:  # computed once per event type
        hints = typing.get_type_hints(cls)
        _CONTAINER_FIELDS[cls] = tuple(
            name for name in cls.__struct_fields__  # type: ignore[attr-defined]
            if re.search(r"\b(dict|list)\[", str(hints[name])))
    return _CONTAINER_FIELDS[cls]


def check_shape(ev: Any, *, strings: bool = True) -> None:
    """Raise :class:`EventError` for a field of ``ev`` nested too deeply or, with ``strings``, holding a
    NUL or a lone surrogate (in its own text or anywhere inside it, keys included)."""
    if strings:
        for name in ev.__struct_fields__:
            value = getattr(ev, name)
            if isinstance(value, str):
                if why := _why(value):
                    raise EventError(name, value, why)
            elif isinstance(value, (dict, list)):
                _check_value(name, value, True)
        return
    for name in container_fields(type(ev)):  # the decoded hot path: only free-form JSON can nest
        value = getattr(ev, name)
        if isinstance(value, (dict, list, tuple)):  # not None, not UNSET
            _check_value(name, value, False)


def check_builtins(doc: dict[str, Any]) -> None:
    """:func:`check_shape` for an event given as plain values (an in-process record, before conversion)."""
    for name, value in doc.items():
        if isinstance(value, str):
            if why := _why(value):
                raise EventError(name, value, why)
        elif isinstance(value, (dict, list)):
            _check_value(name, value, True)


def deep_field(raw: str) -> tuple[str | None, str | None]:
    """(event type, top-level field) of a JSON line whose nesting goes beyond :data:`MAX_DEPTH`, found by
    scanning the text (a decoder overflows on such a line before it can say where)."""
    depth, n, i = 0, len(raw), 0
    key = last_string = event_type = field = None
    value_of: str | None = None  # the top-level key whose value comes next
    while i < n:
        c = raw[i]
        if c == '"':
            j = i + 1
            while j < n and raw[j] != '"':
                j += 2 if raw[j] == "\\" else 1
            last_string, i = raw[i + 1:j], j + 1
            if depth == 1 and value_of == "type" and event_type is None:
                event_type = last_string
            value_of = None
            continue
        if c == ":" and depth == 1:
            key = value_of = last_string
        elif c in "{[":
            depth += 1
            if depth > MAX_DEPTH + 1 and field is None:
                field = key
        elif c in "}]":
            depth -= 1
        if not c.isspace() and c != ":":
            value_of = None
        i += 1
    return event_type, field
