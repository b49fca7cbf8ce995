"""CEL expressions (`event.data.x == 'y'`, `async.data.id == event.data.id`): the one module that
compiles and evaluates them (through ``cel_library``), and the limits every expression meets
before the library sees it.

Expressions come from apps (sync, a wait's ``if`` in a reply) and from operators (bulk cancel);
the data they run on comes from whoever holds an event key. Neither may stop or stall the
runtime, so:

* An expression over ``MAX_EXPRESSION_BYTES``, nested deeper than ``MAX_NESTING`` brackets, or
  with more than ``MAX_OPERATORS`` operators is refused before it is compiled. The library
  panics on a syntax error past column 65,535 (a ``BaseException``, which would end the thread),
  and walks the syntax tree recursively (a few thousand levels overflow a thread's stack).
* Whatever the library raises, panics included, becomes ``ExpressionError`` (compiling) or
  ``EvaluationError`` (evaluating); nothing else leaves this module.
* Cost is bounded by shape: a comprehension inside another one's body, ``in`` or a call in a
  comprehension's body, and ``map()``/``filter()`` are refused (see ``cel_syntax``), so an
  evaluation costs at most in proportion to the expression times the data it reads.
* An evaluation converts only the paths the expression reads (``event.data.id``), not the whole
  event: converting a large event to CEL values costs seconds, and one event may be matched
  against many expressions.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

# Loaded on first use, without the package's command-line interface (stepline.protocol.cel_library).
from stepline.protocol import cel_library as cel
from stepline.protocol.cel_syntax import ROOTS, shape, tokenize

MAX_EXPRESSION_BYTES = 4 * 1024
MAX_NESTING = 32
MAX_OPERATORS = 500
# Compiled programs kept, by source: triggers and rules are evaluated for every event.
CACHE_SIZE = 2048
# How much of a refused expression an error message quotes.
QUOTED_CHARS = 120


class ExpressionError(ValueError):
    """An expression that is refused or does not compile; the message says why."""


class EvaluationError(ValueError):
    """An evaluation that failed (a missing field, mismatched types, anything the library raised)."""


@dataclass(frozen=True)
class Compiled:
    program: Any
    # The paths it reads under ``event`` and ``async``: evaluations see only those.
    paths: tuple[tuple[str, ...], ...]


def quoted(source: str) -> str:
    return repr(source if len(source) <= QUOTED_CHARS else source[:QUOTED_CHARS] + "...")


def check_limits(source: str) -> None:
    """Refuse an expression too large, too deep or too costly to compile and evaluate safely;
    the ``ExpressionError`` names the limit."""
    size = len(source.encode("utf-8", "surrogatepass"))
    if size > MAX_EXPRESSION_BYTES:
        raise ExpressionError(f"expression is {size} bytes; the limit is {MAX_EXPRESSION_BYTES}")
    found = shape(tokenize(source))
    if found.nesting > MAX_NESTING:
        raise ExpressionError(f"expression nests brackets {found.nesting} deep; the limit is {MAX_NESTING}")
    if found.operators > MAX_OPERATORS:
        raise ExpressionError(f"expression has {found.operators} operators; the limit is {MAX_OPERATORS}")
    if found.costly:
        raise ExpressionError(
            f"expression {quoted(source)} uses {found.costly[0]}: its cost would grow faster than "
            "the data it reads (use one all(), exists() or exists_one() over a list, comparing its elements)"
        )


def compile_expression(source: str) -> Compiled:
    """The compiled expression, cached by source; ``ExpressionError`` when it is refused or
    does not compile."""
    if not isinstance(source, str):
        raise ExpressionError(f"expected an expression string, got {type(source).__name__}")
    return _compile(source)


@functools.lru_cache(maxsize=CACHE_SIZE)
def _compile(source: str) -> Compiled:
    if not source.strip():
        raise ExpressionError("must be a non-empty expression")
    check_limits(source)
    try:
        program = cel.compile(source)
    except BaseException as err:  # noqa: BLE001 - the library panics (BaseException) on some input
        if isinstance(err, (KeyboardInterrupt, SystemExit)):
            raise
        raise ExpressionError(f"invalid expression {quoted(source)}: {_first_line(err)}") from None
    return Compiled(program, tuple(sorted(shape(tokenize(source)).paths, key=len)))


def evaluate(source: str, context: dict[str, Any]) -> Any:
    """The expression's value over ``context`` (``event`` and maybe ``async``). Raises
    ``ExpressionError`` for an expression that is refused, ``EvaluationError`` for anything
    the evaluation raised."""
    compiled = compile_expression(source)
    try:
        return compiled.program.execute(prune(context, compiled.paths))
    except BaseException as err:  # noqa: BLE001 - as in _compile: panics included
        if isinstance(err, (KeyboardInterrupt, SystemExit)):
            raise
        raise EvaluationError(f"{type(err).__name__}: {_first_line(err)}") from None


def prune(context: dict[str, Any], paths: tuple[tuple[str, ...], ...]) -> dict[str, Any]:
    """``context`` cut down to what ``paths`` read: each path's value whole, nothing beside it.

    Evaluating over the cut-down context gives the same result: a path stops where anything but
    a field name follows (a call, an operator, a computed index), so everything the expression
    can observe of a value (its size, its keys, equality) is read through a path that keeps it
    whole. Roots the expression never names are left out."""
    tree: dict[str, Any] = {}
    for path in paths:  # shortest first: a path under one read whole adds nothing
        node = tree
        for name in path[:-1]:
            node = node.setdefault(name, {})
            if node is _WHOLE:
                break
        else:
            node[path[-1]] = _WHOLE
    return {root: _cut(context[root], tree[root]) for root in ROOTS if root in tree and root in context}


# Marks a path whose value is kept whole.
_WHOLE: dict[str, Any] = {}


def _cut(value: Any, tree: dict[str, Any]) -> Any:
    if tree is _WHOLE or not isinstance(value, dict):
        return value
    return {name: _cut(value[name], sub) for name, sub in tree.items() if name in value}


def _first_line(err: BaseException) -> str:
    """What the library said, without the expression it quotes back."""
    line = (str(err).strip().splitlines() or [""])[0]
    return line.split("ERROR: ", 1)[-1][:300] or type(err).__name__
