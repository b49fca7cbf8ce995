"""DeadLetters: keep a poison message with its reason, list it, redrive it onto the work queue."""

from __future__ import annotations

import sqlite3

import pytest

from stepline.engine.messages import INVALID_BODY
from stepline.engine.ports import DeadLetters, DeadReason

from .helpers import drain


def reason(clock, run_id: str | None = "run-1", error: str = "call message failed 3 deliveries: boom") -> DeadReason:
    return DeadReason(error=error, receive_count=3, dead_at=clock.now_ms(), run_id=run_id)


def test_both_backends_have_one(backend):
    assert isinstance(backend.dead_letters, DeadLetters)


def test_a_dead_letter_is_listed_with_its_reason(backend, clock):
    body = {"kind": "call", "run_id": "run-1", "step": "step", "attempt": 0}
    backend.dead_letters.dead_letter(body, reason(clock))

    (entry,) = backend.dead_letters.list_dead(10)

    assert entry.body == body
    assert entry.reason == reason(clock)
    assert entry.run_id == "run-1" and entry.dead_at == clock.now_ms()
    assert isinstance(entry.id, str) and entry.id


def test_listing_leaves_them_in_place_and_honours_the_limit(backend, clock):
    for n in range(4):
        backend.dead_letters.dead_letter({"kind": "wake", "run_id": f"r{n}", "step": "s"}, reason(clock, f"r{n}"))

    assert len(backend.dead_letters.list_dead(2)) == 2
    listed = backend.dead_letters.list_dead(10)
    assert sorted(e.run_id for e in listed) == ["r0", "r1", "r2", "r3"]
    assert len({e.id for e in listed}) == 4
    assert sorted(e.run_id for e in backend.dead_letters.list_dead(10)) == ["r0", "r1", "r2", "r3"]


def test_a_message_without_a_run_and_an_error_of_any_text(backend, clock):
    error = "cron message failed 3 deliveries: StoreError: \u00e9t\u00e9 \x00 \n done"
    backend.dead_letters.dead_letter({"kind": "cron", "fn_id": "f", "cron": "* * * * *"}, reason(clock, None, error))

    (entry,) = backend.dead_letters.list_dead(10)

    assert entry.run_id is None
    assert entry.reason.error.startswith("cron message failed 3 deliveries: StoreError: \u00e9t\u00e9 ")
    assert entry.reason.error.endswith(" \n done")


def test_a_body_that_was_never_json_is_kept_as_it_came(backend, clock):
    backend.dead_letters.dead_letter({INVALID_BODY: "not json {"}, reason(clock, None, "malformed"))

    (entry,) = backend.dead_letters.list_dead(10)
    assert entry.body == {INVALID_BODY: "not json {"}

    assert backend.dead_letters.redrive() == 1
    (message,) = drain(backend.queue)
    assert message.body == {INVALID_BODY: "not json {"}


def test_redrive_by_id_moves_only_those_as_fresh_messages(backend, clock):
    for n in range(3):
        backend.dead_letters.dead_letter({"kind": "wake", "run_id": f"r{n}", "step": "s"}, reason(clock, f"r{n}"))
    by_run = {e.run_id: e for e in backend.dead_letters.list_dead(10)}
    seen = []

    moved = backend.dead_letters.redrive([by_run["r0"].id, by_run["r2"].id], on_move=seen.append)

    assert moved == 2
    assert sorted(e.run_id for e in seen) == ["r0", "r2"]
    messages = drain(backend.queue)
    assert sorted(m.body["run_id"] for m in messages) == ["r0", "r2"]
    assert all(m.receive_count == 1 for m in messages)
    assert [e.run_id for e in backend.dead_letters.list_dead(10)] == ["r1"]


def test_on_move_runs_before_the_message_is_back(backend, clock):
    backend.dead_letters.dead_letter({"kind": "wake", "run_id": "r", "step": "s"}, reason(clock, "r"))
    queued_at_callback = []

    backend.dead_letters.redrive(on_move=lambda entry: queued_at_callback.append(backend.queue.receive(10, 30)))

    assert queued_at_callback == [[]]
    assert len(drain(backend.queue)) == 1


def test_a_failing_on_move_leaves_the_message_dead(backend, clock):
    backend.dead_letters.dead_letter({"kind": "wake", "run_id": "r", "step": "s"}, reason(clock, "r"))

    def refuse(entry):
        raise RuntimeError("store down")

    with pytest.raises(RuntimeError):
        backend.dead_letters.redrive(on_move=refuse)

    assert drain(backend.queue) == []
    assert [e.run_id for e in backend.dead_letters.list_dead(10)] == ["r"]


def test_redrive_all_honours_the_limit_and_skips_unknown_ids(backend, clock):
    for n in range(5):
        backend.dead_letters.dead_letter({"kind": "wake", "run_id": f"r{n}", "step": "s"}, reason(clock, f"r{n}"))

    assert backend.dead_letters.redrive(["no-such-id", "12345"]) == 0
    assert backend.dead_letters.redrive(limit=3) == 3
    assert len(backend.dead_letters.list_dead(10)) == 2
    assert backend.dead_letters.redrive() == 2
    assert backend.dead_letters.list_dead(10) == []
    assert len(drain(backend.queue)) == 5
    assert backend.dead_letters.redrive() == 0


def test_a_local_file_of_an_earlier_version_gains_the_table(tmp_path, clock):
    from stepline.local import local_backend
    from stepline.local.schema import SCHEMA_VERSION

    path = str(tmp_path / "old.db")
    with local_backend(path, clock) as backend:
        backend.queue.send({"kind": "wake", "run_id": "r", "step": "s"})
    conn = sqlite3.connect(path)
    conn.executescript("DROP TABLE dead_letters; PRAGMA user_version = 4;")
    conn.close()

    with local_backend(path, clock) as backend:
        backend.dead_letters.dead_letter({"kind": "wake", "run_id": "r", "step": "s"}, reason(clock, "r"))
        assert [e.run_id for e in backend.dead_letters.list_dead(10)] == ["r"]
        assert len(drain(backend.queue)) == 1  # what the file held is still there
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()
