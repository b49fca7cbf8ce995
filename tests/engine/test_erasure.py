"""Erasure on request and expiry after the retention period, on both backends (SQLite, and the
AWS adapters on moto with the payload bucket), end to end through the engine with a scripted app
on a manual clock. After each erasure the backend itself is inspected: no row, item or object of
the run or event is left, and the audit log names what went."""

from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from typing import Any

import pytest

from stepline.engine import messages
from stepline.engine.core import Engine
from stepline.engine.records import DAY_MS, NOTHING
from stepline.engine.http import HttpResponse
from stepline.engine.ending import FINISHED, lifecycle_event_ids
from stepline.engine.ports import RunStatus
from stepline.settings import Settings
from tests.engine.scripted_app import ScriptedApp, pump, register

BIG = "b" * 100_000  # over the AWS adapters' inline limit: the memo goes to the payload bucket


class App(ScriptedApp):
    """Steps named ``big*`` return a large value."""

    def _execute(self, step: str) -> HttpResponse:
        if not step.startswith("big"):
            return super()._execute(step)
        self.executed[step] += 1
        ops = [{"op": "StepRun", "id": step, "name": step, "data": BIG}]
        return HttpResponse(206, json.dumps(ops).encode(), {"x-inngest-req-version": "2"})


@contextmanager
def opened(kind: str, tmp_path, clock, retention_days: int = 0):
    retention = retention_days * DAY_MS or None
    if kind == "sqlite":
        from stepline.local import local_backend

        with local_backend(str(tmp_path / "db"), clock, retention_ms=retention) as backend:
            yield backend
    else:
        from stepline.aws.moto_env import moto_backend

        with moto_backend(clock, retention_ms=retention) as backend:
            yield backend


SCRIPTS = {
    "pipeline": [("run", "load"), ("run", "big-result"), ("run", "save")],
    "napper": [("run", "before"), ("sleep", "nap", "2h"), ("run", "after")],
}


@pytest.fixture(params=["sqlite", "aws"])
def world(request, tmp_path, clock):
    with opened(request.param, tmp_path, clock) as backend:
        app = App(SCRIPTS)
        engine = Engine(backend, Settings(mode="dev"), clock=clock, caller=app)
        register(engine, list(SCRIPTS))
        yield World(backend, engine, app, clock)


class World:
    def __init__(self, backend, engine: Engine, app: App, clock) -> None:
        self.backend = backend
        self.engine = engine
        self.app = app
        self.clock = clock
        self.store = backend.store

    def send(self, fn: str, data: dict | None = None, event_id: str | None = None) -> tuple[str, str]:
        event: dict[str, Any] = {"name": f"app/{fn}", "data": data or {}}
        if event_id:
            event["id"] = event_id
        [internal_id] = self.engine.ingest.accept([event])
        [run] = self.store.runs_for_event(internal_id)
        return internal_id, run.run_id

    def pump(self) -> None:
        pump(self.backend, self.engine, self.clock)

    # -- what the backend holds, read around the store's own API ---------------------------------
    def rows_of_run(self, run_id: str) -> list[str]:
        """Every row or item stored under the run, and every object under its prefix."""
        if self.backend.name == "sqlite":
            found = []
            with self.store._db.connection() as conn:
                for table in ("runs", "memos", "pending", "run_events", "waiters"):
                    count = conn.execute(f"SELECT COUNT(*) FROM {table} WHERE run_id = ?", (run_id,)).fetchone()[0]
                    found += [table] * count
            return found
        ddb, names = self.backend.clients["dynamodb"], self.backend.names
        items = ddb.query(
            TableName=names.table_name,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"RUN#{run_id}"}},
        )["Items"]
        return [i["sk"]["S"] for i in items] + self.objects(f"runs/{run_id}/")

    def rows_of_event(self, internal_id: str) -> list[str]:
        if self.backend.name == "sqlite":
            with self.store._db.connection() as conn:
                events = conn.execute("SELECT COUNT(*) FROM events WHERE internal_id = ?", (internal_id,)).fetchone()[0]
                links = conn.execute(
                    "SELECT COUNT(*) FROM run_events WHERE internal_event_id = ?", (internal_id,)
                ).fetchone()[0]
                claims = conn.execute("SELECT COUNT(*) FROM event_ids WHERE internal_id = ?", (internal_id,)).fetchone()[0]
            return ["event"] * events + ["link"] * links + ["claim"] * claims
        ddb, names = self.backend.clients["dynamodb"], self.backend.names
        items = ddb.query(
            TableName=names.table_name,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"EVENT#{internal_id}"}},
        )["Items"]
        return [i["sk"]["S"] for i in items] + self.objects(f"events/{internal_id}/")

    def claim_holder(self, event_id: str) -> str | None:
        if self.backend.name == "sqlite":
            with self.store._db.connection() as conn:
                row = conn.execute("SELECT internal_id FROM event_ids WHERE id = ?", (event_id,)).fetchone()
            return row[0] if row else None
        ddb, names = self.backend.clients["dynamodb"], self.backend.names
        item = ddb.get_item(
            TableName=names.table_name, Key={"pk": {"S": f"EVID#{event_id}"}, "sk": {"S": "EVID"}}
        ).get("Item")
        return item["internal_id"]["S"] if item else None

    def objects(self, prefix: str) -> list[str]:
        if self.backend.name == "sqlite":
            return []
        s3, bucket = self.backend.clients["s3"], self.backend.names.payload_bucket
        return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]


def test_erasing_a_finished_run_removes_its_steps_payloads_indexes_and_end_events(world, caplog):
    event_id, run_id = world.send("pipeline", {"email": "ada@example.com"})
    world.pump()
    run = world.store.get_run(run_id)
    assert run.status == RunStatus.COMPLETED
    assert "STEP#big-result" in world.rows_of_run(run_id) or "memos" in world.rows_of_run(run_id)
    if world.backend.name == "aws":
        assert world.objects(f"runs/{run_id}/"), "the large step output is in the payload bucket"
    finished = world.store.get_event(lifecycle_event_ids(run)[0])
    assert finished is not None and finished.name == FINISHED and finished.data["run_id"] == run_id

    with caplog.at_level(logging.INFO, logger="stepline.erasure"):
        report = world.engine.erasure.erase_run(run_id)

    assert report.run_ids == [run_id] and report.erased.runs == 1 and report.erased.steps == 3
    assert world.rows_of_run(run_id) == []
    assert world.store.get_run(run_id) is None and world.store.load_run(run_id) is None
    assert world.store.runs_for_event(event_id) == []
    assert world.store.get_event(finished.internal_id) is None  # it carried the run's output
    assert world.rows_of_event(finished.internal_id) == []
    assert world.store.get_event(event_id) is not None  # the trigger is an erasure of its own
    assert f"erased run {run_id}" in caplog.text and "ada@example.com" not in caplog.text
    # Erasing again finds nothing: idempotent.
    assert world.engine.erasure.erase_run(run_id).erased == NOTHING


def test_erasing_an_event_removes_it_with_every_run_and_its_dedupe_claim(world):
    event_id, run_id = world.send("pipeline", {"user": "u-1"}, event_id="order-7")
    world.pump()
    assert world.claim_holder("order-7") == event_id
    report = world.engine.erasure.erase_event(event_id)
    assert report.event_ids[0] == event_id and run_id in report.run_ids
    assert world.rows_of_event(event_id) == [] and world.rows_of_run(run_id) == []
    assert world.store.get_event(event_id) is None
    assert world.claim_holder("order-7") is None
    # The id is free again: the same event id sent now is a new event, not the erased one.
    again, _ = world.send("pipeline", {"user": "u-1"}, event_id="order-7")
    assert again != event_id and world.store.get_event(again) is not None


def test_erasing_a_live_run_cancels_it_and_erases_again_after_a_late_write(world):
    event_id, run_id = world.send("napper")
    world.pump()
    assert world.store.get_run(run_id).status == RunStatus.RUNNING  # asleep for two hours
    report = world.engine.erasure.erase_run(run_id)
    assert report.erased.runs == 1 and world.rows_of_run(run_id) == []
    # A step call that was in flight writes its result after the erasure ...
    from tests.contract.helpers import make_memo

    world.store.commit_memo(run_id, make_memo("late", {"secret": 1}, "9999"))
    assert world.rows_of_run(run_id) != []
    # ... and the erase message, queued for after the longest call, removes it.
    world.engine.executor.handle(messages.erase(run_id))
    assert world.rows_of_run(run_id) == []
    # Its wake-up and the rest of the queue find nothing to do; the run never comes back.
    world.clock.advance(3 * 3600 * 1000)
    world.pump()
    assert world.store.get_run(run_id) is None and world.app.executed["after"] == 0


def test_a_filter_erases_matching_events_in_the_window_and_nothing_else(world):
    start = world.clock.now_ms()
    targets = [world.send("pipeline", {"user": "u-1", "n": n}) for n in range(3)]
    other = world.send("pipeline", {"user": "u-2"})
    world.clock.advance(60_000)
    late = world.send("pipeline", {"user": "u-1", "late": True})  # outside the window
    world.pump()
    end_events = {e for _, run_id in targets for e in lifecycle_event_ids(world.store.get_run(run_id))}
    window = {"received_after": start - 1, "received_before": start + 1}
    erased: list[str] = []
    cursor = None
    for _ in range(10):  # one event looked at per call: the cursor carries the rest
        report = world.engine.erasure.erase_matching(
            'event.data.user == "u-1"', name="app/pipeline", cursor=cursor, scan=1, **window
        )
        erased += report.event_ids
        cursor = report.cursor
        if not report.more:
            break
    # The matching events, and the end events their runs emitted (which carry their data).
    assert {e for e, _ in targets} <= set(erased) <= {e for e, _ in targets} | end_events
    for event_id, run_id in targets:
        assert world.rows_of_event(event_id) == [] and world.rows_of_run(run_id) == []
    for event_id, run_id in (other, late):
        assert world.store.get_event(event_id) is not None
        assert world.store.get_run(run_id).status == RunStatus.COMPLETED


# -- retention -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sqlite", "aws"])
def test_runs_and_events_expire_the_retention_after_they_end(kind, tmp_path, clock):
    with opened(kind, tmp_path, clock, retention_days=30) as backend:
        app = App(SCRIPTS)
        engine = Engine(backend, Settings(mode="dev", retention_days=30), clock=clock, caller=app)
        register(engine, list(SCRIPTS))
        world = World(backend, engine, app, clock)
        event_id, run_id = world.send("napper")
        world.pump()
        clock.advance(10 * DAY_MS)  # the run sleeps past the event's own retention clock start
        world.pump()
        run = backend.store.get_run(run_id)
        assert run.status == RunStatus.COMPLETED and app.executed["after"] == 1
        ended_at = run.ended_at

        clock.set(ended_at + 30 * DAY_MS - 1)
        assert backend.store.expired_runs(clock.now_ms(), limit=10) == []
        engine.executor.handle(messages.sweep())  # the sweep runs the expiry too
        assert backend.store.get_run(run_id) is not None

        clock.set(ended_at + 30 * DAY_MS + 1)
        assert backend.store.expired_runs(clock.now_ms(), limit=10) == [run_id]
        engine.executor.handle(messages.sweep())
        assert world.rows_of_run(run_id) == []
        assert backend.store.expired_runs(clock.now_ms(), limit=10) == []

        if kind == "sqlite":
            # Events go by the engine's expiry pass too, 30 days after they were received.
            assert world.rows_of_event(event_id) == []
        else:
            # DynamoDB's TTL deletes them (moto never expires items): the TTL is what is checked.
            ddb, names = backend.clients["dynamodb"], backend.names
            item = ddb.get_item(
                TableName=names.table_name, Key={"pk": {"S": f"EVENT#{event_id}"}, "sk": {"S": "EVENT"}}
            )["Item"]
            received = world.store.get_event(event_id).received_at
            assert int(item["ttl"]["N"]) == -(-(received + 30 * DAY_MS) // 1000)


def test_the_aws_ending_write_carries_the_expiry_and_a_ttl_backstop(tmp_path, clock):
    from stepline.aws.erasure import RUN_TTL_GRACE_MS

    with opened("aws", tmp_path, clock, retention_days=7) as backend:
        app = App(SCRIPTS)
        engine = Engine(backend, Settings(mode="dev", retention_days=7), clock=clock, caller=app)
        register(engine, list(SCRIPTS))
        _, run_id = World(backend, engine, app, clock).send("pipeline")
        pump(backend, engine, clock)
        ended_at = backend.store.get_run(run_id).ended_at
        ddb, names = backend.clients["dynamodb"], backend.names
        item = ddb.get_item(TableName=names.table_name, Key={"pk": {"S": f"RUN#{run_id}"}, "sk": {"S": "RUN"}})["Item"]
        expires_at = ended_at + 7 * DAY_MS
        assert int(item["expires_at"]["N"]) == expires_at
        assert int(item["ttl"]["N"]) == (expires_at + RUN_TTL_GRACE_MS) // 1000
        assert item["gsi2pk"]["S"].startswith("EXPIRE#") and item["gsi2sk"]["S"] == f"{expires_at:015d}#{run_id}"
        # Left the sweeper's index: an ended run is never stalled.
        assert backend.store.stalled_runs(expires_at * 2, clock.now_ms(), limit=10)[0] == []


@pytest.mark.parametrize("kind", ["sqlite", "aws"])
def test_without_retention_nothing_expires(kind, tmp_path, clock):
    with opened(kind, tmp_path, clock) as backend:
        app = App(SCRIPTS)
        engine = Engine(backend, Settings(mode="dev"), clock=clock, caller=app)
        register(engine, list(SCRIPTS))
        _, run_id = World(backend, engine, app, clock).send("pipeline")
        pump(backend, engine, clock)
        clock.advance(3650 * DAY_MS)
        assert backend.store.expired_runs(clock.now_ms(), limit=10) == []
        assert backend.store.expired_events(clock.now_ms(), limit=10) == []
        engine.executor.handle(messages.sweep())
        assert backend.store.get_run(run_id) is not None
