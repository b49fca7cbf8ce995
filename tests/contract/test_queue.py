"""WorkQueue: send, receive, visibility, ack, retry_later, delays.

SQS measures delays and visibility in real time and the local queue on the injected clock, so
the few tests that wait move both: ``clock.advance(ms)`` and ``time.sleep`` the same amount.
"""

from __future__ import annotations

import time

from .helpers import drain

WAIT_MS = 1_100  # just past one second, the smallest delay both queues accept


def pass_time(clock, ms: int = WAIT_MS) -> None:
    clock.advance(ms)
    time.sleep(ms / 1000)


def bodies(messages) -> list:
    return sorted((m.body for m in messages), key=lambda b: b["n"])


def test_send_then_receive_and_hide(backend):
    backend.queue.send({"n": 1, "kind": "run", "run_id": "r1"})

    (msg,) = backend.queue.receive(10, 30)

    assert msg.body == {"n": 1, "kind": "run", "run_id": "r1"}
    assert msg.receive_count == 1
    assert isinstance(msg.handle, str) and msg.handle
    assert backend.queue.receive(10, 30) == []


def test_receive_respects_max_messages(backend):
    backend.queue.send_many([{"n": i} for i in range(5)])

    first = backend.queue.receive(2, 30)
    rest = drain(backend.queue)

    assert 1 <= len(first) <= 2
    assert bodies(first + rest) == [{"n": i} for i in range(5)]


def test_send_many_beyond_one_sqs_batch(backend):
    backend.queue.send_many([{"n": i} for i in range(23)])
    assert bodies(drain(backend.queue)) == [{"n": i} for i in range(23)]


def test_send_many_of_nothing_is_fine(backend):
    backend.queue.send_many([])
    assert backend.queue.receive(10, 30) == []


def test_retry_later_now_redelivers_with_a_higher_count(backend):
    backend.queue.send({"n": 1})
    (first,) = backend.queue.receive(1, 30)

    backend.queue.retry_later(first.handle, 0)
    (second,) = drain(backend.queue, visibility_seconds=30)
    backend.queue.retry_later(second.handle, 0)
    (third,) = drain(backend.queue, visibility_seconds=30)

    assert [first.body, second.body, third.body] == [{"n": 1}] * 3
    assert [first.receive_count, second.receive_count, third.receive_count] == [1, 2, 3]


def test_longest_delay_is_accepted_and_hides_the_message(backend):
    assert backend.queue.max_delay_seconds >= 900
    backend.queue.send({"n": 1}, delay_seconds=backend.queue.max_delay_seconds)
    assert drain(backend.queue) == []


def test_delay_visibility_and_ack(backend, clock):
    backend.queue.send({"n": 1}, delay_seconds=1)  # delayed
    backend.queue.send_many([{"n": 2}, {"n": 3}])  # 2 will time out, 3 will be acked

    now = drain(backend.queue, visibility_seconds=1)
    assert bodies(now) == [{"n": 2}, {"n": 3}]
    acked = next(m for m in now if m.body["n"] == 3)
    backend.queue.ack(acked.handle)
    assert backend.queue.receive(10, 30) == []

    pass_time(clock)

    later = {m.body["n"]: m.receive_count for m in drain(backend.queue, visibility_seconds=30)}
    assert later == {1: 1, 2: 2}


def test_retry_later_with_a_delay(backend, clock):
    backend.queue.send({"n": 1})
    (msg,) = backend.queue.receive(1, 30)

    backend.queue.retry_later(msg.handle, 1)
    assert backend.queue.receive(10, 30) == []

    pass_time(clock)
    (again,) = drain(backend.queue)
    assert again.body == {"n": 1} and again.receive_count == 2
