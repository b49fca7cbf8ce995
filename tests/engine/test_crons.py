"""Cron triggers in the engine, on both backends: schedules follow each sync exactly, a fire
starts one run per minute however many crons coincide, and jitter delays the start."""

from __future__ import annotations

import json

from stepline.aws.scheduler import scheduled_time
from stepline.engine import messages
from stepline.engine.core import Engine
from stepline.engine.crons import SCHEDULED, schedule_name
from stepline.protocol.register import parse_register
from stepline.settings import Settings

APP_URL = "http://127.0.0.1:9/api/inngest"


def register_body(triggers: list[dict]) -> bytes:
    fn = {
        "id": "cron-app-nightly",
        "name": "nightly",
        "triggers": triggers,
        "steps": {"step": {"id": "step", "name": "step",
                           "runtime": {"type": "http", "url": APP_URL + "?fnId=cron-app-nightly&stepId=step"}}},
    }
    return json.dumps({"appname": "cron-app", "url": APP_URL, "framework": "flask", "sdk": "py:v0.5.19",
                       "v": "0.1", "functions": [fn]}).encode()


def engine_for(backend, clock) -> Engine:
    return Engine(backend, Settings(mode="dev"), clock=clock)


def test_sync_creates_and_removes_cron_schedules(backend, clock):
    engine = engine_for(backend, clock)
    crons = [{"cron": "TZ=Europe/Paris 0 9 * * *"}, {"cron": "0 8 * * *"}]
    engine.registry.register(parse_register(register_body(crons)))
    names = {schedule_name("cron-app", "cron-app-nightly", c["cron"]) for c in crons}
    assert set(backend.timers.list_crons()) >= names
    engine.registry.register(parse_register(register_body([crons[1]])))
    remaining = set(backend.timers.list_crons())
    assert schedule_name("cron-app", "cron-app-nightly", crons[0]["cron"]) not in remaining
    assert schedule_name("cron-app", "cron-app-nightly", crons[1]["cron"]) in remaining
    engine.registry.register(parse_register(register_body([{"event": "app/other"}])))
    assert not any(n in backend.timers.list_crons() for n in names)


def test_coinciding_fires_start_one_run(backend, clock):
    engine = engine_for(backend, clock)
    crons = [{"cron": "TZ=Europe/Paris 0 9 * * *"}, {"cron": "0 8 * * *"}]
    engine.registry.register(parse_register(register_body(crons)))
    at = clock.now_ms() // 60_000 * 60_000
    for c in crons:
        engine.crons.fire(messages.parse({**messages.cron("cron-app-nightly", c["cron"]), "at": at}))
    again = messages.parse({**messages.cron("cron-app-nightly", crons[0]["cron"]), "at": at})
    engine.crons.fire(again)  # delivered twice
    events, _ = backend.store.list_events(limit=10, name=SCHEDULED)
    assert len(events) == 1
    runs, _ = backend.store.list_runs("cron-app-nightly", limit=10)
    assert len(runs) == 1 and runs[0].events[0]["data"]["cron"] in {c["cron"] for c in crons}


def test_jitter_delays_the_start_within_its_bound(backend, clock):
    engine = engine_for(backend, clock)
    engine.registry.register(parse_register(register_body([{"cron": "0 8 * * *", "jitter": "1h"}])))
    at = clock.now_ms() // 60_000 * 60_000
    sent: list[tuple[dict, int]] = []
    original = engine.crons.waker.at
    engine.crons.waker.at = lambda message, when: sent.append((message.to_body(), when))  # type: ignore[method-assign]
    engine.crons.fire(messages.parse({**messages.cron("cron-app-nightly", "0 8 * * *"), "at": at}))
    engine.crons.waker.at = original  # type: ignore[method-assign]
    [(body, when)] = sent
    assert at <= when <= at + 3_600_000
    assert body["jittered"] is True and body["at"] == at
    runs, _ = backend.store.list_runs("cron-app-nightly", limit=10)
    assert runs == []  # nothing starts before the jittered time
    engine.crons.fire(messages.parse(body))
    runs, _ = backend.store.list_runs("cron-app-nightly", limit=10)
    assert len(runs) == 1


def test_a_fire_for_a_removed_cron_starts_nothing(backend, clock):
    engine = engine_for(backend, clock)
    engine.registry.register(parse_register(register_body([{"event": "app/other"}])))
    engine.crons.fire(messages.parse({**messages.cron("cron-app-nightly", "0 8 * * *"), "at": clock.now_ms()}))
    runs, _ = backend.store.list_runs("cron-app-nightly", limit=10)
    assert runs == []


def test_scheduler_fires_take_their_due_time_not_their_arrival(backend, clock):
    # EventBridge Scheduler fires anywhere within the minute and retries late: the event's id and
    # ts come from the scheduled time it substitutes, so a late or repeated delivery starts the
    # same run once, and fires of two minutes delivered in the same minute stay two runs.
    engine = engine_for(backend, clock)
    cron = "* * * * *"
    engine.registry.register(parse_register(register_body([{"cron": cron}])))
    minute = clock.now_ms() // 60_000 * 60_000
    fire = messages.cron("cron-app-nightly", cron)
    clock.advance(3 * 60_000 + 17_000)  # a backlog: both arrive minutes late, in one minute
    engine.crons.fire(messages.parse({**fire, "scheduled_time": scheduled_time(minute)}))
    engine.crons.fire(messages.parse({**fire, "scheduled_time": scheduled_time(minute + 60_000)}))
    engine.crons.fire(messages.parse({**fire, "scheduled_time": scheduled_time(minute)}))  # a retried delivery
    events, _ = backend.store.list_events(limit=10, name=SCHEDULED)
    assert sorted(e.ts for e in events) == [minute, minute + 60_000]
    runs, _ = backend.store.list_runs("cron-app-nightly", limit=10)
    assert len(runs) == 2
