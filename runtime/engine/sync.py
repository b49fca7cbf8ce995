"""App sync: what `POST /fn/register` does once the body is parsed and validated."""

from __future__ import annotations

from stepline.check.on_sync import warn_on_sync
from stepline.engine.crons import Crons
from stepline.engine.ports import AppRecord, Backend, Clock, FunctionRecord
from stepline.protocol.register import AppSync


class Registry:
    def __init__(self, backend: Backend, clock: Clock, crons: Crons) -> None:
        self.store = backend.store
        self.clock = clock
        self.crons = crons

    def register(self, sync: AppSync) -> bool:
        """Store the app and replace its function set. Returns whether anything changed."""
        functions = [
            FunctionRecord(
                fn_id=fn.id,
                app_id=sync.app_id,
                name=fn.name or fn.id,
                url=fn.url,
                config=fn.normalized(),
                event_triggers=sorted({t.event for t in fn.triggers if t.event}),
            )
            for fn in sync.functions
        ]
        previous = self.store.get_app(sync.app_id)
        modified = previous is None or previous.url != sync.url or self._changed(previous, functions)
        self.store.put_app(
            AppRecord(
                app_id=sync.app_id,
                url=sync.url,
                synced_at=self.clock.now_ms(),
                sdk=sync.sdk or "",
                framework=sync.framework or "",
                app_version=sync.app_version or "",
                function_ids=[f.fn_id for f in functions],
            ),
            functions,
        )
        self.crons.sync_app(sync.app_id, functions)
        warn_on_sync(sync)
        return modified

    def _changed(self, previous: AppRecord, functions: list[FunctionRecord]) -> bool:
        if sorted(previous.function_ids) != sorted(f.fn_id for f in functions):
            return True
        for fn in functions:
            stored = self.store.get_function(fn.fn_id)
            if stored is None or stored.config != fn.config or stored.url != fn.url:
                return True
        return False
