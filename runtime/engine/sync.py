"""App sync, both ways: asking an app to sync (``sync_app``, what `stepline dev -u URL` and
`POST /v1/apps/sync` do), and what `POST /fn/register` does once the body it then sends is parsed
and validated (``Registry``)."""

from __future__ import annotations

import logging
import threading

import urllib3

from stepline.check.on_sync import warn_on_sync
from stepline.engine.crons import Crons
from stepline.engine.ports import AppRecord, Backend, Clock, FunctionRecord
from stepline.protocol.register import AppSync

log = logging.getLogger(__name__)


def sync_app(url: str, *, attempts: int = 60, interval_s: float = 1.0, stop: threading.Event | None = None) -> bool:
    """PUT the app URL until it answers 2xx, retrying while it starts up. The SDK then POSTs its
    config to /fn/register.

    No X-Inngest-Server-Kind header: the SDK would reject a PUT whose kind differs from its own
    mode, and leaving it out is always accepted (docs/protocol.md §2.3).
    """
    http = urllib3.PoolManager(retries=False)
    stop = stop or threading.Event()
    for attempt in range(attempts):
        try:
            resp = http.request("PUT", url, body=b"", timeout=urllib3.Timeout(connect=2, read=30))
            if 200 <= resp.status < 300:
                log.info("synced app %s", url)
                return True
            log.warning("sync of %s answered %s: %s", url, resp.status, resp.data[:300])
        except urllib3.exceptions.HTTPError as exc:
            if attempt == 0:
                log.info("waiting for app %s (%s)", url, type(exc).__name__)
        if stop.wait(interval_s):
            break
    log.error("could not sync app %s", url)
    return False


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
