"""Generators shared by the fuzz modules: any JSON, any text (lone surrogates included), and
bodies encoded the ways a client may send them."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

# Every code point, lone surrogates included: JSON can carry them as \ud800 escapes (and the
# server refuses them: no store can hold them).
any_text = st.text(st.characters(), max_size=20)
# Every code point a string may hold in valid Unicode.
unicode_text = st.text(st.characters(codec="utf-8"), max_size=20)

json_scalar = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | unicode_text
)
json_value = st.recursive(
    json_scalar,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(unicode_text, inner, max_size=4),
    max_leaves=12,
)
json_object = st.dictionaries(unicode_text, json_value, max_size=5)
# JSON whose strings may also hold lone surrogates.
raw_json_value = st.recursive(
    json_scalar | any_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4),
    max_leaves=8,
)


def nested(depth: int, leaf: Any = 1) -> Any:
    """Arrays nested ``depth`` deep around ``leaf``."""
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def deep_json(depth: int) -> bytes:
    """JSON nested ``depth`` deep, written as text (building it as objects would hit Python's
    own recursion limit before the server's parser does)."""
    return b"[" * depth + b"1" + b"]" * depth


@st.composite
def encoded(draw: st.DrawFn, value: Any) -> bytes:
    """``value`` as JSON bytes: escaped ASCII, or raw UTF-8 (surrogates then make the body
    invalid UTF-8, which a client can send too), with or without whitespace."""
    ascii_only = draw(st.booleans())
    spaced = draw(st.booleans())
    text = json.dumps(value, ensure_ascii=ascii_only, separators=(", ", ": ") if spaced else (",", ":"))
    return text.encode("utf-8", "surrogatepass")


def body_of(values: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    return values.flatmap(encoded)


# Bodies that are not JSON at all, or JSON of the wrong kind.
garbage_body = (
    st.binary(max_size=64)
    | st.text(max_size=40).map(lambda s: s.encode("utf-8"))
    | st.sampled_from([b"", b" ", b"null", b"{", b"[", b"[1,", b'{"a":', b"NaN", b"[Infinity]", b'{"name": NaN}',
                       b"\xff\xfe", b'"\\ud800"', b"1e999", b"-", b"{}", b"[]", b"[[]]", b"true"])
    | body_of(raw_json_value)
)
