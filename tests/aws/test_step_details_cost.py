"""Step details cost no extra requests where steps are hot: a memo with its detail is still one
UpdateItem, and reading one pending op (what resuming a sleep, wait or invoke adds) one GetItem."""

from __future__ import annotations

from stepline.engine.records import Memo
from tests.contract.helpers import make_pending, make_run


def test_memo_with_detail_is_one_update_and_a_pending_op_one_get(aws, calls, clock):
    run = make_run(clock)
    aws.store.create_run(run)
    aws.store.add_pending(run.run_id, make_pending("s1", "Sleep", created_at=5, wake_at=9))

    op, counts = calls.during(aws.store.get_pending, run.run_id, "s1")
    assert op is not None and op.detail == {"wake_at": 9} and counts == {"GetItem": 1}

    memo = Memo(step_id="s1", value={"data": None}, seq="0001", name="nap",
                detail={"op": "Sleep", "started_at": 5, "input": {"wake_at": 9}})
    won, counts = calls.during(aws.store.commit_memo, run.run_id, memo)
    assert won is True and counts == {"UpdateItem": 1}
