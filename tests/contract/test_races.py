"""Conditional writes under contention: eight threads race, exactly one wins.

The dev server runs many worker threads and AWS runs many Lambdas; these are the writes that
make at-least-once delivery exactly-once in effect.
"""

from __future__ import annotations

from stepline.engine.records import RunStatus

from .helpers import drain, make_event, make_memo, make_pending, make_run, race

N = 8


def test_commit_memo_race(backend, clock):
    run = make_run(clock)
    backend.store.create_run(run)

    won = race(N, lambda i: backend.store.commit_memo(run.run_id, make_memo("step", f"w{i}", f"{i:04d}")))

    assert won.count(True) == 1
    winner = won.index(True)
    assert backend.store.load_run(run.run_id).memo_map() == {"step": {"data": f"w{winner}"}}


def test_acquire_lease_race(backend, clock):
    run = make_run(clock)
    backend.store.create_run(run)
    now = clock.now_ms()

    won = race(N, lambda i: backend.store.acquire_lease(run.run_id, f"w{i}", now + 30_000, now))

    winners = [i for i, gen in enumerate(won) if gen is not None]
    assert len(winners) == 1 and won[winners[0]] == 1
    assert backend.store.get_run(run.run_id).lease_owner == f"w{winners[0]}"


def test_create_run_race(backend, clock):
    runs = [make_run(clock, run_id="run-contended", fn_id=f"fn-{i}") for i in range(N)]

    won = race(N, lambda i: backend.store.create_run(runs[i]))

    assert won.count(True) == 1
    assert backend.store.get_run("run-contended") == runs[won.index(True)]


def test_add_pending_race(backend, clock):
    run = make_run(clock)
    backend.store.create_run(run)

    won = race(N, lambda i: backend.store.add_pending(run.run_id, make_pending("p", writer=f"w{i}")))

    assert won.count(True) == 1
    assert backend.store.load_run(run.run_id).pending["p"].detail == {"writer": f"w{won.index(True)}"}


def test_update_run_expect_status_race(backend, clock):
    run = make_run(clock, status=RunStatus.RUNNING)
    backend.store.create_run(run)

    won = race(
        N,
        lambda i: backend.store.update_run(
            run.run_id, {"status": RunStatus.COMPLETED, "output": i}, expect_status={RunStatus.RUNNING}
        ),
    )

    assert won.count(True) == 1
    assert backend.store.get_run(run.run_id).output == won.index(True)


def test_save_events_dedupe_race(backend, clock):
    events = [make_event(clock, event_id="same-id", data={"i": i}) for i in range(N)]

    saved = race(N, lambda i: backend.store.save_events([events[i]], clock.now_ms())[0])

    assert len({e.internal_id for e in saved}) == 1
    winners = [i for i in range(N) if saved[i].internal_id == events[i].internal_id]
    assert len(winners) == 1
    page, _ = backend.store.list_events(limit=50)
    assert [e.internal_id for e in page] == [events[winners[0]].internal_id]


def test_receive_race_never_delivers_twice(backend):
    backend.queue.send_many([{"n": i} for i in range(24)])

    def receive_all(_: int) -> list[int]:
        got = []
        for msg in drain(backend.queue, visibility_seconds=60):
            got.append(msg.body["n"])
        return got

    per_thread = race(N, receive_all)

    delivered = [n for got in per_thread for n in got]
    assert sorted(delivered) == list(range(24))
