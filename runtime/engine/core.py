"""The engine wired together: one object the dev server, the Lambda handlers and the tests share.

Services are built in the order they depend on one another, each with its collaborators passed
in; none is wired afterwards. One cycle is real: ending a run emits the lifecycle events through
ingest (they start ``on_failure`` handlers and whatever else they trigger), and ingest ends runs
(a ``cancel_on`` rule, a singleton in mode "cancel"). ``RunEnding`` is built first, with
ingest's ``accept`` reached through the engine when it is called (``_emit``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stepline.engine import messages
from stepline.engine.cancellation import Cancellation
from stepline.engine.checkpoint import Checkpoints
from stepline.engine.clock import SystemClock
from stepline.engine.crons import Crons
from stepline.engine.delivery import Delivery
from stepline.engine.ending import RunEnding
from stepline.engine.erasure import Erasure
from stepline.engine.executor import Executor
from stepline.engine.flow.admission import FlowControl
from stepline.engine.flow.concurrency import Concurrency
from stepline.engine.http import HttpCaller, PooledHttpCaller
from stepline.engine.ids import IdGenerator
from stepline.engine.ingest import Ingest
from stepline.engine.keys import KeyRing, Keys, StaticKeys
from stepline.engine.ops.ai import AiGateway
from stepline.engine.outbound import AddressPolicy
from stepline.engine.ports import Backend, Clock, FunctionRecord, Run, StoredEvent
from stepline.engine.replay import Replays
from stepline.engine.resume import Resumer
from stepline.engine.retention import Retention
from stepline.engine.runs import RunStarter, invocation_event
from stepline.engine.scheduling import Waker
from stepline.engine.signals import Signals
from stepline.engine.sweeper import Sweeper
from stepline.engine.sync import Registry
from stepline.engine.waits import Waits
from stepline.settings import Settings
from stepline.telemetry import Telemetry
from stepline.telemetry.setup import telemetry_from_env


class Engine:
    def __init__(
        self,
        backend: Backend,
        settings: Settings | None = None,
        *,
        clock: Clock | None = None,
        caller: HttpCaller | None = None,
        keys: KeyRing | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.backend = backend
        self.settings = settings or Settings()
        self.clock = clock or SystemClock()
        # What requests are checked against and calls signed with; deployed, re-read from the
        # secrets (stepline.handlers.wiring), else the settings' keys.
        self.keys: KeyRing = keys or StaticKeys(Keys.from_settings(self.settings))
        self.ids = IdGenerator(self.clock)
        b, clock = backend, self.clock
        # Messages on the queue now or later (timers past the queue's own delay cap).
        self.waker = Waker(b.queue, b.timers, clock)
        # Traces, metrics and log fields: the OTEL_* environment's tracer, unless given.
        self.telemetry = tel = telemetry or telemetry_from_env(self.clock)
        # Each service gets only the storage ports it uses (the Backend's typed views of its store).
        self.starter = RunStarter(b.runs, b.waiters, clock, telemetry=tel)
        self.resumer = Resumer(b.runs, b.queue, self.ids, telemetry=tel)
        # How every run ends (see the module docstring for the one cycle).
        self.ending = RunEnding(
            b.runs,
            b.apps,
            b.waiters,
            b.key_claims,
            clock,
            self.resumer,
            self._emit,
            b.signals,
            telemetry=tel,
        )
        self.cancellation = Cancellation(b.runs, self.ending)
        cancel = self.cancellation.cancel
        # Where runs start and resume: flow control, waits on events, crons.
        flow = FlowControl(
            b.flow_state,
            b.key_claims,
            b.runs,
            b.events,
            b.apps,
            b.queue,
            self.waker,
            clock,
            self.starter,
            cancel=cancel,
            telemetry=tel,
        )
        self.waits = Waits(b.waiters, b.events, b.queue, self.resumer, cancel, b.signals)
        # A run waiting for a signal, resumed by POST /v1/signals.
        self.signals = Signals(b.signals, b.runs, self.resumer, clock)
        self.ingest = Ingest(
            b.events,
            b.apps,
            b.queue,
            clock,
            self.ids,
            flow,
            self.waits,
            inline_events=self.settings.ingest_inline_events,
        )
        self.crons = Crons(b.events, b.apps, b.queue, b.timers, self.waker, clock, self.starter)
        self.registry = Registry(b.apps, clock, self.crons, self.settings, self.keys)
        # One outbound client, under the address policy, for the apps and step.ai.infer's models.
        self.caller = caller = caller or PooledHttpCaller(policy=AddressPolicy.from_settings(self.settings))
        # Concurrency limits: the slots around each executor call, and the lines the sweeper wakes.
        self.concurrency = Concurrency(
            b.slots, b.runs, b.queue, self.waker, clock, self.ids, self.settings, telemetry=tel
        )
        # Finds runs whose wake-up got lost; on AWS a scheduled `sweep` message runs it.
        self.sweeper = Sweeper(
            b.runs, b.apps, b.slots, b.queue, self.waker, self.concurrency, clock, self.ids, self.settings
        )
        self.erasure = Erasure(
            b.runs, b.events, b.eraser, b.queue, self.clock, self.cancellation, self.settings, self._remove_waiters
        )
        # Expiry past the retention period rides on the sweep: no schedule of its own.
        self.retention = Retention(b.eraser, b.queue, self.clock)
        # What an app reports mid-call through the API, and the runs an operator starts again.
        self.checkpoints = Checkpoints(b.runs, clock, self.ids, telemetry=tel)
        self.replays = Replays(b.runs, b.apps, b.waiters, b.queue, clock, self.ids, telemetry=tel)
        # step.ai.infer's model requests, made by the engine while the app is not running.
        self.ai = AiGateway(b.runs, b.apps, self.resumer, self.waker, clock, self.ids, self.settings, caller)
        # The messages the executor hands on, by kind (the ones about one run's steps are its own).
        handlers: dict[str, Callable[[Any], object]] = {
            messages.SWEEP: self._sweep,
            messages.EXPIRE: self.retention.handle,
            messages.ERASE: self.erasure.handle,
            messages.MATCH_WAITERS: self.waits.go_on,
            messages.CRON: self.crons.fire,
            messages.START: self.ingest.start,
            messages.DEBOUNCE: flow.debounce.fire,
            messages.BATCH: flow.batching.fire,
            messages.RUN_TIMEOUT: self._run_timeout,
            messages.AI_CALL: self.ai.handle,
        }
        self.executor = Executor(
            b.runs,
            b.apps,
            b.events,
            b.waiters,
            b.signals,
            self.concurrency,
            b.queue,
            self.waker,
            clock,
            self.ids,
            self.settings,
            caller,
            self.ending,
            cancel,
            self.resumer,
            self.starter,
            keys=self.keys,
            handlers=handlers,
            telemetry=tel,
        )
        # How a received message is handled, poison included: the driver's and the Lambda's.
        self.delivery = Delivery(
            b.runs, b.queue, b.dead_letters, self.executor, self.ending, self.clock, self.settings, telemetry=tel
        )

    def _emit(self, events: list[dict[str, Any]], seed: tuple[int, bytes]) -> list[str]:
        return self.ingest.accept(events, seed=seed)

    def _run_timeout(self, message: messages.RunTimeout) -> None:
        self.cancellation.cancel(message.run_id, "the run did not finish within timeouts.finish")

    def _sweep(self, message: messages.Sweep) -> None:
        self.sweeper.handle(message)
        if self.retention.enabled:
            self.retention.handle(message)

    def _remove_waiters(self, run_id: str) -> None:
        state = self.backend.runs.load_run(run_id)
        if state is not None:
            fn = self.backend.apps.get_function(state.run.fn_id)
            self.waits.remove_all(state, fn.config if fn else None)

    def cancel_run(self, run_id: str) -> Run | None:
        """Cancel a run that has not ended; see ``Cancellation.cancel``."""
        return self.cancellation.cancel(run_id)

    def invoke(
        self, fn: FunctionRecord, data: dict[str, Any], sender: dict[str, str] | None = None
    ) -> tuple[StoredEvent, str]:
        """Start a run of ``fn`` now with ``data``, as an operator's invoke does (whatever its
        triggers, no flow control on arrival): the event is stored, then the run started.
        Returns the stored event and the run id (``sender``: the request's trace context)."""
        now = self.clock.now_ms()
        [stored] = self.backend.events.save_events([invocation_event(fn, data, self.ids.new(), now, sender)], now)
        run_id, message = self.starter.start_for_event(fn, stored)
        if message is not None:
            self.backend.queue.send(message)
        return stored, run_id
