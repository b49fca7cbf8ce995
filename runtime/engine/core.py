"""The engine wired together: one object the dev server, the Lambda handlers and the tests share."""

from __future__ import annotations

from typing import Any, cast

from stepline.engine import messages
from stepline.engine.cancellation import Cancellation
from stepline.engine.clock import SystemClock
from stepline.engine.crons import Crons
from stepline.engine.delivery import Delivery
from stepline.engine.erasure import Erasure
from stepline.engine.erasure import Store as ErasingStore
from stepline.engine.executor import Executor
from stepline.engine.http import HttpCaller, PooledHttpCaller
from stepline.engine.ids import IdGenerator
from stepline.engine.ingest import Ingest
from stepline.engine.keys import KeyRing, Keys, StaticKeys
from stepline.engine.lifecycle import Lifecycle
from stepline.engine.ports import Backend, Clock, Run
from stepline.engine.resume import Resumer
from stepline.engine.retention import Retention
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
        keys: KeyRing | None = None,
    ) -> None:
        self.backend = backend
        self.settings = settings or Settings()
        self.clock = clock or SystemClock()
        # What requests are checked against and calls signed with; deployed, re-read from the
        # secrets (stepline.handlers.wiring), else the settings' keys.
        self.keys: KeyRing = keys or StaticKeys(Keys.from_settings(self.settings))
        self.ids = IdGenerator(self.clock)
        store = backend.store
        self.ingest = Ingest(backend, self.clock, self.ids)
        self.resumer = Resumer(store, backend.queue, self.ids)
        self.cancellation = Cancellation(store, self.clock)
        self.waits = Waits(store, self.resumer, self.cancellation.cancel)
        self.lifecycle = Lifecycle(self.ingest, self.resumer, self.cancellation, self.waits)
        # Late links: each of these needs a piece that needs it back.
        self.ingest.waits = self.waits
        self.cancellation.lifecycle = self.lifecycle
        self.cancellation.waits = self.waits
        self.crons = Crons(backend, self.clock, self.ingest.starter)
        self.registry = Registry(backend, self.clock, self.crons)
        self.executor = Executor(
            backend,
            self.clock,
            self.ids,
            self.settings,
            caller or PooledHttpCaller(),
            self.lifecycle,
            self.resumer,
            self.ingest.starter,
            keys=self.keys,
        )
        # How a received message is handled, poison included: the driver's and the Lambda's.
        self.delivery = Delivery(backend, self.executor, self.lifecycle, self.clock, self.settings)
        # Finds runs whose wake-up got lost; on AWS a scheduled `sweep` message runs it.
        self.sweeper = Sweeper(backend, self.clock, self.ids, self.settings)
        # Both adapter families' stores also erase (stepline.engine.erasure_port).
        erasing = cast(ErasingStore, store)
        self.erasure = Erasure(
            erasing, backend.queue, self.clock, self.cancellation, self.settings, self._remove_waiters
        )
        # Expiry past the retention period rides on the sweep: no schedule of its own.
        self.retention = Retention(erasing, backend.queue, self.clock)
        self.executor.handlers[messages.SWEEP] = self._sweep
        self.executor.handlers[messages.EXPIRE] = self.retention.handle
        self.executor.handlers[messages.ERASE] = self.erasure.handle
        self.executor.handlers[messages.CRON] = self.crons.fire
        self.executor.handlers[messages.DEBOUNCE] = self.ingest.flow.debounce.fire
        self.executor.handlers[messages.BATCH] = self.ingest.flow.batching.fire
        self.ingest.flow.cancel = self.cancellation.cancel
        self.executor.handlers[messages.RUN_TIMEOUT] = lambda body: self.cancellation.cancel(
            body["run_id"], "the run did not finish within timeouts.finish"
        )

    def _sweep(self, body: dict[str, Any]) -> None:
        self.sweeper.handle(body)
        if self.retention.enabled:
            self.retention.handle(body)

    def _remove_waiters(self, run_id: str) -> None:
        state = self.backend.store.load_run(run_id)
        if state is not None:
            fn = self.backend.store.get_function(state.run.fn_id)
            self.waits.remove_all(state, fn.config if fn else None)

    def cancel_run(self, run_id: str) -> Run | None:
        """Cancel a run that has not ended; see ``Cancellation.cancel``."""
        return self.cancellation.cancel(run_id)
