"""Function configs and app records as the executor's hot path reads them: from a short-lived
cache.

A sync takes effect for new executor invocations within ``ttl_ms``; a function that is not
registered is read again every time (it may be synced any moment).
"""

from __future__ import annotations

from stepline.engine.ports import AppRecord, AppStore, Clock, FunctionRecord

# How long a function config is trusted before it is read again.
FUNCTION_CACHE_MS = 5_000


class FunctionCache:
    def __init__(self, apps: AppStore, clock: Clock, ttl_ms: int = FUNCTION_CACHE_MS) -> None:
        self.apps = apps
        self.clock = clock
        self.ttl_ms = ttl_ms
        self._functions: dict[str, tuple[int, FunctionRecord]] = {}
        self._apps: dict[str, tuple[int, AppRecord | None]] = {}

    def function(self, fn_id: str) -> FunctionRecord | None:
        now = self.clock.now_ms()
        cached = self._functions.get(fn_id)
        if cached and now - cached[0] < self.ttl_ms:
            return cached[1]
        fn = self.apps.get_function(fn_id)
        if fn is not None:
            self._functions[fn_id] = (now, fn)
        return fn

    def app(self, app_id: str) -> AppRecord | None:
        now = self.clock.now_ms()
        cached = self._apps.get(app_id)
        if cached and now - cached[0] < self.ttl_ms:
            return cached[1]
        app = self.apps.get_app(app_id)
        self._apps[app_id] = (now, app)
        return app
