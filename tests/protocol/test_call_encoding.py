"""The cached call-request encoder gives exactly the JCS bytes of the whole request."""

from __future__ import annotations

import hashlib

import pytest

from stepline.protocol.call_encoding import CallEncoder
from stepline.protocol.calls import build_call_request
from stepline.protocol.jsoncanon import canonical_json


def request(memos: dict, stack: list[str], events: list[dict]) -> dict:
    return build_call_request(run_id="01RUN", attempt=1, max_attempts=4, events=events, steps=memos,
                              stack=stack, disable_immediate=False, use_api=False, version=2)


EVENTS = [{"name": "app/run", "id": "e1", "ts": 1700000000000, "data": {"é": 1.5, "big": 2**60, "z": [1e-7, 3.0]}, "user": {}}]


def test_matches_canonical_json_as_memos_accumulate():
    encoder = CallEncoder()
    memos: dict = {}
    stack: list[str] = []
    for i in range(30):
        body = request(memos, stack, EVENTS)
        assert encoder.encode(body) == canonical_json(body)
        step = hashlib.sha1(f"s{i}".encode()).hexdigest()
        memos[step] = {"data": {"i": i, "f": i / 3, "s": "ünïcode \u2028 \x01"}} if i % 2 else {"error": {"name": "E", "message": "m", "stack": ""}}
        stack.append(step)


@pytest.mark.parametrize("keys", [["b", "a", "\U0001F600", "\uffff", "é"], ["x:1", "x", "x:10"]])
def test_odd_step_ids_sort_and_escape_like_jcs(keys):
    encoder = CallEncoder()
    memos = {k: {"data": k} for k in keys}
    body = request(memos, list(keys), EVENTS)
    assert encoder.encode(body) == canonical_json(body)
