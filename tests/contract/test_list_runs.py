"""RunStore run listing: one function's runs, newest first, exclusive time bounds, opaque cursor,
optional status filter."""

from __future__ import annotations

from stepline.engine.records import RunStatus

from .helpers import make_run

FN = "shop-fulfil"


def collect(store, fn_id: str, limit: int, **filters):
    """Follow cursors to the end. Without a status filter an empty page must end the listing;
    with one, short and empty pages with a cursor are allowed (a backend may filter after
    reading a page of the index)."""
    runs, cursor, pages = [], None, 0
    while True:
        page, cursor = store.list_runs(fn_id, limit=limit, cursor=cursor, **filters)
        pages += 1
        assert len(page) <= limit
        if cursor is not None and "status" not in filters:
            assert page, "an empty page must end the listing"
        runs.extend(page)
        if cursor is None:
            return runs
        assert pages < 100


def create(backend, runs):
    for run in runs:
        assert backend.store.create_run(run)
    return runs


def test_newest_first_across_pages(backend, clock):
    t = clock.now_ms()
    runs = create(backend, [make_run(clock, created_at=t + i * 1000) for i in range(7)])

    first, cursor = backend.store.list_runs(FN, limit=3)
    assert first == [runs[6], runs[5], runs[4]]
    assert cursor is not None
    assert collect(backend.store, FN, 3) == list(reversed(runs))
    assert collect(backend.store, FN, 1) == list(reversed(runs))


def test_only_the_functions_own_runs(backend, clock):
    t = clock.now_ms()
    mine = create(backend, [make_run(clock, created_at=t + i) for i in range(3)])
    create(backend, [make_run(clock, fn_id="shop-other", created_at=t + 1)])
    create(backend, [make_run(clock, fn_id="shop-fulfil-v2", created_at=t + 2)])

    assert collect(backend.store, FN, 10) == list(reversed(mine))
    assert backend.store.list_runs("nobody", limit=10) == ([], None)


def test_one_page_when_everything_fits(backend, clock):
    runs = create(backend, [make_run(clock, created_at=clock.now_ms() + i) for i in range(3)])

    page, cursor = backend.store.list_runs(FN, limit=10)
    assert page == list(reversed(runs))
    assert cursor is None


def test_runs_created_in_the_same_millisecond_are_neither_lost_nor_repeated(backend, clock):
    t = clock.now_ms()
    runs = create(backend, [make_run(clock, created_at=t) for _ in range(5)])
    runs += create(backend, [make_run(clock, created_at=t - 1)])

    for limit in (1, 2, 4):
        listed = collect(backend.store, FN, limit)
        assert len(listed) == 6
        assert {r.run_id for r in listed} == {r.run_id for r in runs}
        assert [r.created_at for r in listed] == [t] * 5 + [t - 1]


def test_bounds_are_exclusive(backend, clock):
    t = clock.now_ms()
    create(backend, [make_run(clock, created_at=t + i * 1000) for i in range(6)])

    window = collect(backend.store, FN, 2, created_after=t + 1000, created_before=t + 4000)
    assert [r.created_at - t for r in window] == [3000, 2000]
    assert [r.created_at - t for r in collect(backend.store, FN, 10, created_after=t + 3000)] == [5000, 4000]
    assert [r.created_at - t for r in collect(backend.store, FN, 10, created_before=t + 1000)] == [0]
    assert collect(backend.store, FN, 10, created_after=t + 2000, created_before=t + 3000) == []


def test_status_filter(backend, clock):
    t = clock.now_ms()
    runs = create(backend, [make_run(clock, created_at=t + i) for i in range(8)])
    for i in (1, 4, 6):
        backend.store.update_run(runs[i].run_id, {"status": RunStatus.COMPLETED, "output": i})
    backend.store.update_run(runs[2].run_id, {"status": RunStatus.FAILED})

    for limit in (1, 2, 10):
        done = collect(backend.store, FN, limit, status=RunStatus.COMPLETED)
        assert [r.run_id for r in done] == [runs[i].run_id for i in (6, 4, 1)]
        assert all(r.status is RunStatus.COMPLETED for r in done)
        assert [r.output for r in done] == [6, 4, 1]
    queued = collect(backend.store, FN, 3, status=RunStatus.QUEUED)
    assert [r.run_id for r in queued] == [runs[i].run_id for i in (7, 5, 3, 0)]
    assert collect(backend.store, FN, 3, status=RunStatus.CANCELLED) == []


def test_status_filter_with_bounds(backend, clock):
    t = clock.now_ms()
    runs = create(backend, [make_run(clock, created_at=t + i * 10) for i in range(6)])
    for run in runs[::2]:
        backend.store.update_run(run.run_id, {"status": RunStatus.RUNNING})

    listed = collect(backend.store, FN, 1, status=RunStatus.RUNNING, created_after=t, created_before=t + 50)
    assert [r.run_id for r in listed] == [runs[4].run_id, runs[2].run_id]


def test_listed_runs_are_current(backend, clock):
    run = create(backend, [make_run(clock)])[0]
    backend.store.update_run(
        run.run_id,
        {"status": RunStatus.FAILED, "ended_at": clock.now_ms() + 5, "error": {"name": "Error"}},
    )

    (listed,), _ = backend.store.list_runs(FN, limit=5)
    assert listed == backend.store.get_run(run.run_id)
    assert listed.status is RunStatus.FAILED and listed.error == {"name": "Error"}
