"""Queue message bodies under mutation: every body the engine writes, with a field dropped,
retyped or added. ``messages.parse`` either reads a message, which writes a body that reads
back to the same message, or refuses the body with ``Malformed`` and a reason naming a field or
the kind; it never raises anything else (delivery would not catch it)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from stepline.engine import messages
from stepline.engine.messages import Malformed
from tests.engine.test_message_types import BODIES, LINE
from tests.fuzz.strategies import json_value

FIELDS = sorted({name for body, _ in BODIES for name in body} | {"line", "waits", "woken", "ahead"})


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    body, _ = draw(st.sampled_from(BODIES))
    body = dict(body)
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from(FIELDS))
        if draw(st.booleans()) and name in body:
            del body[name]
        elif name == "line" and draw(st.booleans()):
            # A place in a line with one of its own fields retyped.
            body[name] = {**LINE, draw(st.sampled_from(sorted(LINE))): draw(json_value)}
        else:
            body[name] = draw(json_value)
    return body


@given(mutated())
def test_a_mutated_body_is_read_or_refused_with_a_reason(body):
    try:
        message = messages.parse(body)
    except Malformed as refused:
        assert refused.reason.split(":")[0] in {*FIELDS, "unknown message kind None"} or refused.reason.startswith(
            "unknown message kind"
        )
        return
    assert messages.parse(message.to_body()) == message
