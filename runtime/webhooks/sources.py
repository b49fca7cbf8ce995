"""Where sources are configured: the deployment's (``stepline:webhooks``, in the settings, read
only) and those stored through the REST API and the CLI.

Stored sources are versioned state (the ``FlowStateStore`` port, which both backends implement
with compare-and-set): one state per source and one index of their names, so listing them is a
read of the index and one read per source, and no backend needs a table of its own. Nothing
expires them. The index is updated after the source itself, each with compare-and-set, so two
operators configuring sources at once both land; a source is found by its own state, so an
index a crash left behind by one write is repaired by the next ``put`` or ``delete``.
"""

from __future__ import annotations

from stepline.engine.ports import Clock
from stepline.engine.stores import FlowStateStore
from stepline.protocol.events import MAX_TS_MS
from stepline.webhooks.model import Origin, WebhookSource

SOURCE_KEY = "webhooks/source/"
INDEX_KEY = "webhooks/sources"
# Stored configuration never expires (the port's states all carry an expiry).
FOREVER_MS = MAX_TS_MS
# Compare-and-set retries before giving up on a write that keeps losing races.
ATTEMPTS = 8


class SourceReadOnly(Exception):
    """The deployment sets this source; it is changed in cdk.json, not through the API."""


class WebhookSources:
    def __init__(self, state: FlowStateStore, clock: Clock, deployed: list[WebhookSource] | None = None) -> None:
        self._state = state
        self._clock = clock
        self._deployed = {s.source: s for s in deployed or []}

    def get(self, name: str) -> WebhookSource | None:
        if name in self._deployed:
            return self._deployed[name]
        found = self._state.get_flow_state(SOURCE_KEY + name, self._clock.now_ms())
        return WebhookSource.model_validate(found.data) if found is not None else None

    def all(self) -> list[WebhookSource]:
        stored = [s for s in (self.get(name) for name in self._names()) if s is not None and s.origin == Origin.API]
        return sorted([*self._deployed.values(), *stored], key=lambda s: s.source)

    def put(self, source: WebhookSource) -> bool:
        """Store ``source`` (replacing one of its name); True when it is new."""
        if source.source in self._deployed:
            raise SourceReadOnly(source.source)
        data = source.model_dump(mode="json")
        key = SOURCE_KEY + source.source
        for _ in range(ATTEMPTS):
            now = self._clock.now_ms()
            current = self._state.get_flow_state(key, now)
            version = current.version if current is not None else None
            if self._state.put_flow_state(key, data, expect_version=version, expires_at=FOREVER_MS, now_ms=now):
                self._update_index(add=source.source)
                return current is None
        raise RuntimeError(f"webhook source {source.source!r}: kept losing races to other writers")

    def delete(self, name: str) -> bool:
        """Remove a stored source; False when there was none."""
        if name in self._deployed:
            raise SourceReadOnly(name)
        key = SOURCE_KEY + name
        for _ in range(ATTEMPTS):
            current = self._state.get_flow_state(key, self._clock.now_ms())
            if current is None:
                self._update_index(remove=name)
                return False
            if self._state.delete_flow_state(key, current.version):
                self._update_index(remove=name)
                return True
        raise RuntimeError(f"webhook source {name!r}: kept losing races to other writers")

    def _names(self) -> list[str]:
        index = self._state.get_flow_state(INDEX_KEY, self._clock.now_ms())
        return list(index.data.get("names") or []) if index is not None else []

    def _update_index(self, *, add: str | None = None, remove: str | None = None) -> None:
        for _ in range(ATTEMPTS):
            now = self._clock.now_ms()
            index = self._state.get_flow_state(INDEX_KEY, now)
            names = set(index.data.get("names") or []) if index is not None else set()
            wanted = (names | {add} if add else names) - ({remove} if remove else set())
            if wanted == names and index is not None:
                return
            version = index.version if index is not None else None
            if self._state.put_flow_state(
                INDEX_KEY, {"names": sorted(wanted)}, expect_version=version, expires_at=FOREVER_MS, now_ms=now
            ):
                return
        raise RuntimeError("webhook sources: the index kept losing races to other writers")
