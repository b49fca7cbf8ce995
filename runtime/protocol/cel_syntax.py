"""CEL read as text, before the library sees it: tokens, and the facts the runtime needs from them.

The ``cel`` library compiles and evaluates; what it cannot tell us, this module reads from the
tokens: how deeply an expression nests and how many operators it has (its syntax tree's depth,
which the library walks recursively on a thread's stack), which comprehensions it uses and what
their bodies do (their cost), and which paths under ``event`` and ``async`` it reads (so an
evaluation converts only those, not a whole event).

The lexer is lenient: it never refuses, and what it does not know becomes a one-character
token that the library then reports. Only string literals and comments need exact edges, so
that brackets and names inside them are not counted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum


class Kind(str, Enum):
    NAME = "name"
    STRING = "string"
    NUMBER = "number"
    PUNCT = "punct"


@dataclass(frozen=True)
class Token:
    kind: Kind
    text: str
    # For a plain string literal (no escapes, no bytes prefix): its value. None otherwise.
    value: str | None = None


_SPACE = re.compile(r"(?:\s+|//[^\n]*)+")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"0[xX][0-9a-fA-F]+[uU]?|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[uU]?")
_PUNCT = ("&&", "||", "==", "!=", "<=", ">=")
_PREFIX = re.compile(r"[rRbB]{1,2}(?=['\"])")


def tokenize(source: str) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(source)
    while i < n:
        space = _SPACE.match(source, i)
        if space:
            i = space.end()
            continue
        prefix = _PREFIX.match(source, i)
        start = prefix.end() if prefix else i
        if start < n and source[start] in "'\"":
            end = _string_end(source, start, raw=bool(prefix and "r" in prefix.group().lower()))
            text = source[i:end]
            tokens.append(Token(Kind.STRING, text, _plain_value(text)))
            i = end
            continue
        number = _NUMBER.match(source, i)
        if number and number.end() > i:
            tokens.append(Token(Kind.NUMBER, number.group()))
            i = number.end()
            continue
        name = _NAME.match(source, i)
        if name:
            tokens.append(Token(Kind.NAME, name.group()))
            i = name.end()
            continue
        two = source[i : i + 2]
        width = 2 if two in _PUNCT else 1
        tokens.append(Token(Kind.PUNCT, source[i : i + width]))
        i += width
    return tokens


def _string_end(source: str, start: int, *, raw: bool) -> int:
    """The index just past the string literal whose opening quote is at ``start`` (the end of
    the source when it is not closed: the library reports that)."""
    quote = source[start]
    if source.startswith(quote * 3, start):
        close = source.find(quote * 3, start + 3)
        while not raw and close > 0 and _escaped(source, start + 3, close):
            close = source.find(quote * 3, close + 1)
        return len(source) if close < 0 else close + 3
    i = start + 1
    while i < len(source):
        char = source[i]
        if char == "\\" and not raw:
            i += 2
            continue
        if char == quote or char == "\n":
            return i + 1
        i += 1
    return len(source)


def _escaped(source: str, begin: int, at: int) -> bool:
    backslashes = 0
    while at - 1 - backslashes >= begin and source[at - 1 - backslashes] == "\\":
        backslashes += 1
    return backslashes % 2 == 1


def _plain_value(text: str) -> str | None:
    if text[0] not in "'\"" or "\\" in text or len(text) < 2:
        return None  # a prefix (raw, bytes) or an escape: not worth decoding here
    if text[:3] in ("'''", '"""'):
        return text[3:-3] if len(text) >= 6 and text[-3:] == text[:3] else None
    return text[1:-1] if text[-1] == text[0] else None


# -- what the tokens say ----------------------------------------------------------------------

# The comprehension macros. map() and filter() build their result by copying it at every
# element in the library (measured: 12,000 elements take seconds), so they are refused outright.
COMPREHENSIONS = frozenset({"all", "exists", "exists_one", "map", "filter"})
QUADRATIC = frozenset({"map", "filter"})
# Calls allowed inside a comprehension's body: constant cost whatever the data.
CONSTANT_CALLS = frozenset({"has"})
_OPENERS = {"(": ")", "[": "]", "{": "}"}
_NOT_OPERATORS = frozenset({",", ":", ")", "]", "}"})
ROOTS = ("event", "async")


@dataclass
class Shape:
    """What an expression's tokens say about its size and cost, and what it reads."""

    nesting: int = 0  # deepest bracket nesting: (), [] and {}
    operators: int = 0  # operators, member selections, index and call brackets
    # Why its cost could grow faster than the data it reads (nested comprehensions, map or
    # filter, `in` or calls inside a comprehension's body); empty when it cannot.
    costly: list[str] = field(default_factory=list)
    # Paths read under ``event`` and ``async``: ("event", "data", "id") for event.data.id. A
    # path ends where something other than a field name follows; all of its value is read.
    paths: set[tuple[str, ...]] = field(default_factory=set)


def shape(tokens: list[Token]) -> Shape:
    out = Shape()
    # Open brackets: (closing text, whether it is a comprehension's argument list).
    stack: list[tuple[str, bool]] = []
    for index, token in enumerate(tokens):
        text = token.text
        in_body = any(comprehension for _, comprehension in stack)
        if token.kind is Kind.PUNCT:
            if text not in _NOT_OPERATORS:
                out.operators += 1
            if text in _OPENERS:
                macro = _macro_before(tokens, index) if text == "(" else None
                if macro is not None:
                    _judge_comprehension(out, macro, in_body)
                elif text == "(" and in_body and _called_name(tokens, index) not in (None, *CONSTANT_CALLS):
                    out.costly.append(f"{_called_name(tokens, index)}() inside a comprehension's body")
                stack.append((_OPENERS[text], macro is not None))
                out.nesting = max(out.nesting, len(stack))
            elif stack and text == stack[-1][0]:
                stack.pop()
        elif token.kind is Kind.NAME:
            if text == "in":
                out.operators += 1
                if in_body:
                    out.costly.append("`in` inside a comprehension's body")
            elif text in ROOTS and not _after_dot(tokens, index) and not _is_call(tokens, index):
                out.paths.add(_path_from(tokens, index))
    return out


def _after_dot(tokens: list[Token], index: int) -> bool:
    return index > 0 and tokens[index - 1].text == "."


def _is_call(tokens: list[Token], index: int) -> bool:
    return index + 1 < len(tokens) and tokens[index + 1].text == "("


def _macro_before(tokens: list[Token], paren: int) -> str | None:
    """The comprehension whose argument list opens at ``paren`` (``xs.all(``), or None."""
    if paren >= 2 and tokens[paren - 1].text in COMPREHENSIONS and tokens[paren - 2].text == ".":
        return tokens[paren - 1].text
    return None


def _called_name(tokens: list[Token], paren: int) -> str | None:
    """The function a ``(`` calls (``size(``, ``x.startsWith(``), or None for grouping."""
    if paren >= 1 and tokens[paren - 1].kind is Kind.NAME and tokens[paren - 1].text != "in":
        return tokens[paren - 1].text
    return None


def _judge_comprehension(out: Shape, macro: str, in_body: bool) -> None:
    if macro in QUADRATIC:
        out.costly.append(f"{macro}() (its cost grows with the square of the list's size)")
    elif in_body:
        out.costly.append(f"{macro}() inside another comprehension's body")


def _path_from(tokens: list[Token], index: int) -> tuple[str, ...]:
    """The field path starting at the root name at ``index``: ``.name`` and ``["key"]`` steps,
    up to the first thing that is neither (a call, an operator, a computed index)."""
    path = [tokens[index].text]
    i = index + 1
    while (step := field_step(tokens, i)) is not None:
        path.append(step[0])
        i = step[1]
    return tuple(path)


def field_step(tokens: list[Token], i: int) -> tuple[str, int] | None:
    """The field selected at ``i`` (``.name`` not called, or ``["key"]``) and the index after
    it; None when the tokens there select no field."""
    if i + 1 < len(tokens) and tokens[i].text == "." and tokens[i + 1].kind is Kind.NAME:
        if i + 2 < len(tokens) and tokens[i + 2].text == "(":
            return None  # a method call: its receiver is read whole
        return tokens[i + 1].text, i + 2
    if i + 2 < len(tokens) and tokens[i].text == "[" and tokens[i + 2].text == "]":
        key = tokens[i + 1].value
        if key is not None:
            return key, i + 3
    return None
