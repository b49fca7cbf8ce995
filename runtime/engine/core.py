"""The engine wired together: one object the dev server, the Lambda handlers and the tests share."""

from __future__ import annotations

from stepline.engine import messages
from stepline.engine.cancellation import Cancellation
from stepline.engine.clock import SystemClock
from stepline.engine.crons import Crons
from stepline.engine.delivery import Delivery
from stepline.engine.executor import Executor
from stepline.engine.http import HttpCaller, PooledHttpCaller
from stepline.engine.ids import IdGenerator
from stepline.engine.ingest import Ingest
from stepline.engine.lifecycle import Lifecycle
from stepline.engine.outbound import AddressPolicy
from stepline.engine.ports import Backend, Clock, Run
from stepline.engine.resume import Resumer
from stepline.engine.sweeper import Sweeper
from stepline.engine.sync import Registry
from stepline.engine.waits import Waits
from stepline.settings import Settings


class Engine:
    def __init__(
        self,
        backend: Backend,
        settings: Settings | None = None,
        *,
        clock: Clock | None = None,
        caller: HttpCaller | None = None,
    ) -> None:
        self.backend = backend
        self.settings = settings or Settings()
        self.clock = clock or SystemClock()
        self.ids = IdGenerator(self.clock)
        store = backend.store
        self.ingest = Ingest(backend, self.clock, self.ids)
        self.resumer = Resumer(store, backend.queue, self.ids)
        self.cancellation = Cancellation(store, self.clock)
        self.waits = Waits(store, backend.queue, self.resumer, self.cancellation.cancel)
        self.lifecycle = Lifecycle(self.ingest, self.resumer, self.cancellation, self.waits)
        # Late links: each of these needs a piece that needs it back.
        self.ingest.waits = self.waits
        self.cancellation.lifecycle = self.lifecycle
        self.cancellation.waits = self.waits
        self.crons = Crons(backend, self.clock, self.ingest.starter)
        self.registry = Registry(backend, self.clock, self.crons, self.settings)
        self.executor = Executor(
            backend,
            self.clock,
            self.ids,
            self.settings,
            caller or PooledHttpCaller(policy=AddressPolicy.from_settings(self.settings)),
            self.lifecycle,
            self.resumer,
            self.ingest.starter,
        )
        # How a received message is handled, poison included: the driver's and the Lambda's.
        self.delivery = Delivery(backend, self.executor, self.lifecycle, self.clock, self.settings)
        # Finds runs whose wake-up got lost; on AWS a scheduled `sweep` message runs it.
        self.sweeper = Sweeper(backend, self.clock, self.ids, self.settings)
        self.executor.handlers[messages.SWEEP] = self.sweeper.handle
        self.executor.handlers[messages.MATCH_WAITERS] = self.waits.go_on
        self.executor.handlers[messages.CRON] = self.crons.fire
        self.executor.handlers[messages.DEBOUNCE] = self.ingest.flow.debounce.fire
        self.executor.handlers[messages.BATCH] = self.ingest.flow.batching.fire
        self.ingest.flow.cancel = self.cancellation.cancel
        self.executor.handlers[messages.RUN_TIMEOUT] = lambda body: self.cancellation.cancel(
            body["run_id"], "the run did not finish within timeouts.finish"
        )

    def cancel_run(self, run_id: str) -> Run | None:
        """Cancel a run that has not ended; see ``Cancellation.cancel``."""
        return self.cancellation.cancel(run_id)
