"""The engine wired together: one object the dev server, the Lambda handlers and the tests share."""

from __future__ import annotations

from runtime.engine.clock import SystemClock
from runtime.engine.executor import Executor
from runtime.engine.http import HttpCaller, PooledHttpCaller
from runtime.engine.ids import IdGenerator
from runtime.engine.ingest import Ingest
from runtime.engine.lifecycle import Lifecycle
from runtime.engine.ports import Backend, Clock, Run, RunStatus
from runtime.engine.sync import Registry
from runtime.settings import Settings


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
        self.ingest = Ingest(backend, self.clock, self.ids)
        self.registry = Registry(backend, self.clock)
        self.lifecycle = Lifecycle(self.ingest)
        self.executor = Executor(
            backend, self.clock, self.ids, self.settings, caller or PooledHttpCaller(), self.lifecycle
        )

    def cancel_run(self, run_id: str) -> Run | None:
        """Cancel a run that has not ended. Its pending timers and messages find it terminal and
        do nothing. Returns the run as it now is, or None if there is no such run."""
        live = {RunStatus.QUEUED, RunStatus.RUNNING}
        changes = {"status": RunStatus.CANCELLED, "ended_at": self.clock.now_ms()}
        if self.backend.store.update_run(run_id, changes, expect_status=live):
            run = self.backend.store.get_run(run_id)
            if run is not None:
                self.lifecycle.run_finished(run)
            return run
        return self.backend.store.get_run(run_id)
