"""Caps on fan-out: how much work one request or one reply may make, each refused or failed with
a reason that names the limit and its setting (docs/deploy.md, "Limits").

* Runs per Event API request: events sent at once times the functions each one triggers. Checked
  before anything is stored, so a refused request leaves nothing behind (413); the sender splits
  it. It bounds what one API call does within API Gateway's 30 s.
* Ops per app reply: one reply (a ``Promise.all`` of many steps) plans at most this many; a reply
  with more fails its run, since a retry would answer the same.
* Steps per run: Inngest's 1,000 by default (``max_steps_per_run``), another number per function
  (``max_steps_by_function``); a reply that would take a run past it fails the run.
"""

from __future__ import annotations

from collections.abc import Iterable

from stepline.engine.records import FunctionRecord, RunState
from stepline.settings import Settings

TOO_MANY_OPS = "TooManyOps"
STEP_LIMIT = "StepLimitExceeded"


def runs_problem(runs: int, limit: int) -> str | None:
    """Why a request that would start ``runs`` runs is refused (``limit``: the setting
    ``max_runs_per_request``), or None."""
    if runs <= limit:
        return None
    return (
        f"body: these events would start {runs} runs (events times the functions each triggers); "
        f"the limit is {limit} per request (max_runs_per_request): send fewer events at once"
    )


def reply_problem(ops: int, settings: Settings) -> str | None:
    """Why an app reply with ``ops`` ops is refused, or None."""
    limit = settings.max_ops_per_reply
    if ops <= limit:
        return None
    return f"the app replied with {ops} ops at once; the limit is {limit} per reply (max_ops_per_reply)"


def step_limit(fn: FunctionRecord, settings: Settings) -> int:
    return settings.steps_limits().get(fn.fn_id, settings.max_steps_per_run)


def steps_problem(state: RunState, new_ids: Iterable[str], fn: FunctionRecord, settings: Settings) -> str | None:
    """Why taking on the steps ``new_ids`` would take the run past its step limit, or None. A
    step counts once, whether it is memoized, waited on, or both."""
    # Counted from the run's memo views (kept up to date as steps settle), not rebuilt from every
    # memo: this runs on every reply, and a long run must not cost more per step.
    extra = {step_id for step_id in state.pending if not state.has_memo(step_id)}
    extra.update(step_id for step_id in new_ids if not state.has_memo(step_id))
    total = state.memo_count() + len(extra)
    limit = step_limit(fn, settings)
    if total <= limit:
        return None
    return (
        f"the run would have {total} steps; the limit for {fn.fn_id} is {limit} "
        "(max_steps_per_run, or max_steps_by_function for this function)"
    )
