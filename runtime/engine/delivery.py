"""One delivery of a work message, made the same way by the local driver and the executor
Lambda; where a poison message ends; and the way back for it (redrive).

A message whose handling raises has met an infrastructure failure (``Executor.handle``'s
contract): it comes back after a backoff. When it fails on its ``max_deliveries``-th delivery it
is poison, and so at its first is a message that can never succeed (not JSON, an unknown kind,
a field missing or of the wrong type: ``messages.parse`` refuses it). A poison message goes to
the dead-letter store with the reason; the run it names, if still live, ends Failed with a
``DeliveryFailed`` error the way every run ends (``stepline.engine.ending``: function.failed is
emitted, an invoking parent gets the error, the run is written Failed, its waiters and singleton
key go); and the original is acknowledged by the caller.

Redrive puts dead letters back on the work queue as new messages, and just before each one
reopens the run that dead-lettering failed (only a ``DeliveryFailed`` one): Running again, it
goes on from its last committed step. What the failure did is not undone: function.failed was
emitted, a parent that invoked the run has had the error, and waits for events of the run end
at their timeout (their waiters were removed).
"""

from __future__ import annotations

import logging
from enum import Enum
from typing import TYPE_CHECKING

from stepline.engine import messages
from stepline.engine.ending import Ending, RunEnding
from stepline.engine.ports import (
    Clock,
    DeadLetter,
    DeadLetters,
    DeadReason,
    QueueMessage,
    RunStatus,
    RunStore,
    WorkQueue,
)
from stepline.engine.retry import backoff_ms
from stepline.protocol.opcodes import Op
from stepline.settings import Settings
from stepline.telemetry import NOOP, Telemetry

if TYPE_CHECKING:
    from stepline.engine.executor import Executor

log = logging.getLogger(__name__)

DELIVERY_FAILED = "DeliveryFailed"
# The reason is kept with the message (SQS message attributes count against its 256 KiB).
MAX_ERROR_CHARS = 1_000


class Outcome(str, Enum):
    DONE = "done"  # handled: acknowledge it
    RETRY = "retry"  # failed: it comes back after a backoff (its visibility is set); don't ack
    DEAD = "dead"  # poison: it is in the dead-letter store now; acknowledge it


def is_failure(exc: BaseException) -> bool:
    """Whether handling a message ended in a failure to count towards poison, rather than in
    the process being told to stop. A native library's panic (pyo3's ``PanicException``) is a
    ``BaseException``: left to rise, it would end the worker thread and leave the message to
    come back for ever, so it counts as a failure like any ``Exception``."""
    return not isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit))


def describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Delivery:
    def __init__(
        self,
        runs: RunStore,
        queue: WorkQueue,
        dead_letters: DeadLetters,
        executor: Executor,
        ending: RunEnding,
        clock: Clock,
        settings: Settings,
        *,
        telemetry: Telemetry = NOOP,
    ) -> None:
        self.runs = runs
        self.queue = queue
        self.dead_letters = dead_letters
        self.executor = executor
        self.ending = ending
        self.clock = clock
        self.settings = settings
        self.telemetry = telemetry

    # -- one delivery --------------------------------------------------------------------------
    def deliver(self, message: QueueMessage, *, budget_ms: int | None = None) -> Outcome:
        """Handle one received message. Never raises: the outcome says what the caller does
        with the message (acknowledge it, or leave it to come back)."""
        body = message.body
        kind = messages.kind_of(body)
        try:
            parsed = messages.parse(body, self.executor.handlers)
        except messages.Malformed as refusal:
            # Its log lines name the run the body names, if it names one.
            self.telemetry.message(refusal.run_id)
            return self._bury(message, None, f"{kind} message is malformed: {refusal.reason}", refusal.run_id)
        self.telemetry.message(messages.run_id_of(parsed))
        try:
            self.executor.handle(parsed, budget_ms=budget_ms)
            return Outcome.DONE
        except BaseException as exc:  # noqa: BLE001 - a failure: deliver it again (panics too)
            if not is_failure(exc):
                raise
            count, most = message.receive_count, self.settings.max_deliveries
            if count >= most:
                log.exception("%s message failed its delivery %d of %d: dead-lettering it", kind, count, most)
                error = f"{kind} message failed {count} deliveries: {describe(exc)}"
                return self._bury(message, parsed, error, messages.run_id_of(parsed))
            log.exception("%s message failed its delivery %d of %d; it comes back", kind, count, most)
            self._retry(message)
            return Outcome.RETRY

    def _retry(self, message: QueueMessage) -> None:
        delay_ms = backoff_ms(message.receive_count, self.settings.redelivery_base_ms, self.settings.redelivery_cap_ms)
        try:
            self.queue.retry_later(message.handle, delay_ms // 1000)
        except Exception:  # noqa: BLE001
            log.exception("could not delay the message; it comes back after its visibility timeout")

    def _bury(self, message: QueueMessage, parsed: messages.Message | None, error: str, run_id: str | None) -> Outcome:
        """Dead-letter ``message`` (``parsed``: what it holds, None when malformed; ``run_id``:
        the run it names, which ends Failed)."""
        error = error[:MAX_ERROR_CHARS]
        reason = DeadReason(error, message.receive_count, self.clock.now_ms(), run_id)
        try:
            # Without its place in a concurrency line, which goes below: redriven, it queues anew.
            # A malformed body is kept as it came, for the operator to see what was wrong.
            kept = messages.out_of_line(parsed).to_body() if parsed is not None else message.body
            self.dead_letters.dead_letter(kept, reason)
        except Exception:  # noqa: BLE001 - keep the message until it can be kept elsewhere
            log.exception("could not dead-letter the message; it comes back")
            self._retry(message)
            return Outcome.RETRY
        log.error("dead-lettered: %s (run %s)", error, run_id or "-")
        self.telemetry.dead_letter(messages.kind_of(message.body))
        try:
            if parsed is not None:
                self.executor.concurrency.abandon(parsed)
            if run_id is not None:
                # Without the run's lease: whoever held it (the failing delivery) will not let go.
                failed = Ending(RunStatus.FAILED, error={"name": DELIVERY_FAILED, "message": error})
                self.ending.end_by_id(run_id, failed, also={"lease_owner": None, "lease_until": None})
        except Exception:  # noqa: BLE001 - the message is kept; a redrive takes the run on
            log.exception("run %s: dead-lettered its message but could not mark it failed", run_id)
        return Outcome.DEAD

    # -- the way back --------------------------------------------------------------------------
    def redrive(self, ids: list[str] | None = None, *, limit: int = 100) -> tuple[int, list[str]]:
        """Move dead letters (``ids``, or any when None; at most ``limit``) back onto the work
        queue, reopening their runs first. Returns how many moved and the runs reopened."""
        reopened: list[str] = []

        def ready(entry: DeadLetter) -> None:
            if entry.run_id is not None and self.reopen(entry.run_id):
                reopened.append(entry.run_id)

        moved = self.dead_letters.redrive(ids, limit=limit, on_move=ready)
        return moved, reopened

    def reopen(self, run_id: str) -> bool:
        """Running again, a run that dead-lettering marked Failed (not one that failed any
        other way). True when this call reopened it."""
        run = self.runs.get_run(run_id)
        if run is None or run.status != RunStatus.FAILED or (run.error or {}).get("name") != DELIVERY_FAILED:
            return False
        # Its messages go on the queue now: from now on the sweeper watches it again (failing
        # took it out of the sweeper's index).
        changes = {"status": RunStatus.RUNNING, "error": None, "ended_at": None, "wake_at": self.clock.now_ms()}
        if not self.runs.update_run(run_id, changes, expect_status={RunStatus.FAILED}):
            return False
        # Messages that came while it was Failed found it ended and did nothing (a step memo
        # written by a resume, the job of a planned step): discovery and a job per planned step
        # pick that work up again. Duplicates are harmless, as every message is.
        state = self.runs.load_run(run_id)
        planned = [op.step_id for op in (state.pending.values() if state else []) if op.op == Op.STEP_PLANNED]
        self.queue.send_many([messages.call(run_id)] + [messages.call(run_id, step) for step in planned])
        log.info("run %s reopened for a redrive", run_id)
        return True
