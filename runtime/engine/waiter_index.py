"""Waiters indexed by the equality their expression states, so an event reads only the waiters it
can match, not every waiter of its name.

Most waits and cancel rules say which event they want by an equality between a field of the
incoming event and a value known when the wait began: ``event.data.order_id ==
async.data.order_id`` (the trigger's value), or ``async.data.kind == 'refund'`` (a literal). For
such a waiter the value is known at once, so it is stored under a key made of the event name,
the incoming event's field (``["data","order_id"]``) and the value; an incoming event computes
the key from its own value of each field in use, and reads those buckets, plus the bucket of
waiters whose expression states no equality. The full expression is still evaluated on every
waiter read: the key only leaves out waiters that cannot match.

It never leaves out one that could: the equality is used only when it is a conjunct of the
whole expression (``a && b && c`` at the top level, so the expression is true only if it is),
and values CEL may call equal share a key (``2 == 2.0``; numbers beyond 2^53, lists and maps
are not indexed, and such waiters go in the unkeyed bucket).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from stepline.protocol.cel_syntax import Kind, Token, field_step, tokenize

# Integers CEL compares exactly with doubles; beyond this, 2**53 + 1 == 9007199254740992.0.
_EXACT = 2**53
# A field name longer than this is not worth an index entry (store keys have limits).
MAX_FIELD_CHARS = 256
_TOP_LEVEL_OTHER = frozenset({"||", "?", ":"})
_NO_LITERAL = object()


@dataclass(frozen=True)
class Equality:
    """``async.<field> == event.<source>`` or ``async.<field> == <literal>``."""

    field: tuple[str, ...]  # under the incoming event (``async``)
    source: tuple[str, ...] | None  # under the waiting run's trigger (``event``); None: literal
    literal: Any = None


def match_of(event_name: str, expression: str | None, trigger: dict[str, Any]) -> tuple[str, str] | None:
    """(match_field, match_key) for a new waiter, or None when it goes in the unkeyed bucket."""
    equality = stated_equality(expression) if expression else None
    if equality is None:
        return None
    value = equality.literal if equality.source is None else value_at(trigger, equality.source)
    if value is _NO_LITERAL:
        return None
    field = field_text(equality.field)
    key = match_key(event_name, field, value)
    return None if key is None else (field, key)


def event_keys(event_name: str, fields: list[str], incoming: dict[str, Any]) -> list[str]:
    """The bucket keys an incoming event (in its wire form) reads, one per field it has."""
    keys: list[str] = []
    for field in fields:
        try:
            path = tuple(json.loads(field))
        except (ValueError, TypeError):
            continue
        key = match_key(event_name, field, value_at(incoming, path))
        if key is not None and key not in keys:
            keys.append(key)
    return keys


def field_text(path: tuple[str, ...]) -> str:
    return json.dumps(list(path), separators=(",", ":"), ensure_ascii=False)


def match_key(event_name: str, field: str, value: Any) -> str | None:
    """The key for ``value`` at ``field``, or None when the value is not indexed."""
    normal = _normal(value)
    if normal is None or len(field) > MAX_FIELD_CHARS:
        return None
    text = json.dumps([event_name, field, normal], separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def value_at(root: Any, path: tuple[str, ...]) -> Any:
    """The value at ``path`` under ``root``, or the no-value marker when a step is missing."""
    value = root
    for name in path:
        if not isinstance(value, dict) or name not in value:
            return _NO_LITERAL
        value = value[name]
    return value


def _normal(value: Any) -> str | None:
    """One text per class of values CEL's ``==`` may call equal; None for values not indexed."""
    if value is _NO_LITERAL:
        return None
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"n:{value}" if abs(value) <= _EXACT else None
    if isinstance(value, float):
        if not math.isfinite(value) or abs(value) > _EXACT:
            return None
        return f"n:{int(value)}" if value.is_integer() else f"n:{value!r}"
    if isinstance(value, str):
        return "s:" + value
    return None


# -- reading the equality out of the expression --------------------------------------------------


@functools.lru_cache(maxsize=2048)
def stated_equality(expression: str) -> Equality | None:
    """The first top-level conjunct of the form ``async.<field> == event.<path>`` (either way
    round) or ``async.<field> == <literal>``; None when there is none."""
    for conjunct in _conjuncts(_unwrap(tokenize(expression))):
        found = _equality(_unwrap(conjunct))
        if found is not None:
            return found
    return None


def _unwrap(tokens: list[Token]) -> list[Token]:
    """Without brackets that enclose the whole of it: ``((a))`` is ``a``."""
    while len(tokens) >= 2 and tokens[0].text == "(" and _closing(tokens, 0) == len(tokens) - 1:
        tokens = tokens[1:-1]
    return tokens


def _closing(tokens: list[Token], opening: int) -> int:
    depth = 0
    for i in range(opening, len(tokens)):
        if tokens[i].kind is Kind.PUNCT and tokens[i].text in "([{":
            depth += 1
        elif tokens[i].kind is Kind.PUNCT and tokens[i].text in ")]}":
            depth -= 1
            if depth == 0:
                return i
    return -1


def _conjuncts(tokens: list[Token]) -> list[list[Token]]:
    """The top-level ``&&`` parts; none when anything else joins at the top level (``||``, a
    conditional), since then no part has to be true for the whole to be."""
    parts: list[list[Token]] = [[]]
    depth = 0
    for token in tokens:
        if token.kind is Kind.PUNCT:
            if token.text in "([{":
                depth += 1
            elif token.text in ")]}":
                depth -= 1
            elif depth == 0 and token.text in _TOP_LEVEL_OTHER:
                return []
            elif depth == 0 and token.text == "&&":
                parts.append([])
                continue
        parts[-1].append(token)
    return parts


def _equality(tokens: list[Token]) -> Equality | None:
    equals = [i for i, t in enumerate(tokens) if t.text == "=="]
    if len(equals) != 1:
        return None
    left, right = tokens[: equals[0]], tokens[equals[0] + 1 :]
    for mine, other in ((left, right), (right, left)):
        field = _path(mine, "async")
        if field is None or len(field) == 0:
            continue
        source = _path(other, "event")
        if source is not None:
            return Equality(field, source)
        literal = _literal(other)
        if literal is not _NO_LITERAL:
            return Equality(field, None, literal)
    return None


def _path(tokens: list[Token], root: str) -> tuple[str, ...] | None:
    """The field path of ``root.a["b"].c`` when the tokens are exactly that; else None."""
    if not tokens or tokens[0].kind is not Kind.NAME or tokens[0].text != root:
        return None
    path: list[str] = []
    i = 1
    while i < len(tokens):
        step = field_step(tokens, i)
        if step is None:
            return None
        path.append(step[0])
        i = step[1]
    return tuple(path)


def _literal(tokens: list[Token]) -> Any:
    """A string, integer, decimal, bool or null literal; the no-value marker otherwise."""
    negative = len(tokens) == 2 and tokens[0].text == "-"
    body = tokens[1:] if negative else tokens
    if len(body) != 1:
        return _NO_LITERAL
    token = body[0]
    if token.kind is Kind.STRING and not negative:
        return _NO_LITERAL if token.value is None else token.value
    if token.kind is Kind.NAME and not negative:
        return {"true": True, "false": False, "null": None}.get(token.text, _NO_LITERAL)
    if token.kind is Kind.NUMBER and token.text.isdigit():
        return -int(token.text) if negative else int(token.text)
    if token.kind is Kind.NUMBER and all(c.isdigit() or c == "." for c in token.text) and token.text.count(".") == 1:
        return -float(token.text) if negative else float(token.text)
    return _NO_LITERAL
