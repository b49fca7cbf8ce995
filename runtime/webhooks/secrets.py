"""Each source's secret: given inline (``stepline dev``, ``stepline start``) or, deployed, read
from Secrets Manager and kept like the runtime's own keys (``stepline.engine.keys``): read on
first use, read again once older than ``max_age_ms`` by the engine's clock, so a secret rolled
at the provider and put in Secrets Manager is used within that time without a deploy. A failed
re-read keeps the value in hand and tries again ``RETRY_AFTER_FAILURE_MS`` later; a secret never
read answers ``SecretUnavailable`` (a 503 the provider retries), never a 401 counted against it.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from stepline.engine.keys import RETRY_AFTER_FAILURE_MS
from stepline.engine.ports import Clock
from stepline.webhooks.model import WebhookSource

log = logging.getLogger(__name__)

# A secret's text by its id (name or ARN).
SecretFetcher = Callable[[str], "str | bytes"]


class SecretUnavailable(Exception):
    def __init__(self, source: str) -> None:
        super().__init__(
            f"webhook source {source!r}: its secret could not be read; nothing was stored (the provider will retry)"
        )
        self.message = str(self)


@dataclass
class _Held:
    value: str
    next_read_at: int


class WebhookSecrets:
    def __init__(self, clock: Clock, *, max_age_ms: int, fetch: SecretFetcher | None = None) -> None:
        self._clock = clock
        self._max_age_ms = max_age_ms
        self._fetch = fetch or fetch_secret
        self._held: dict[str, _Held] = {}
        self._lock = threading.Lock()
        self.reads = 0

    def secret_for(self, source: WebhookSource) -> str:
        if source.secret is not None:
            return source.secret
        assert source.secret_id is not None  # the model holds exactly one of the two
        secret_id = source.secret_id
        held = self._held.get(secret_id)
        if held is not None and self._clock.now_ms() < held.next_read_at:
            return held.value
        with self._lock:
            now = self._clock.now_ms()
            held = self._held.get(secret_id)
            if held is not None and now < held.next_read_at:
                return held.value  # another thread read it meanwhile
            try:
                value = secret_text(self._fetch(secret_id))
                self.reads += 1
            except Exception:  # noqa: BLE001 - keep what is in hand; say so without the value
                log.exception("reading the secret of webhook source %r failed", source.source)
                if held is None:
                    raise SecretUnavailable(source.source) from None
                held.next_read_at = now + RETRY_AFTER_FAILURE_MS
                return held.value
            self._held[secret_id] = _Held(value, now + self._max_age_ms)
            return value


def secret_text(raw: str | bytes) -> str:
    """The secret itself, or the ``secret`` of JSON ``{"secret": ...}`` (the form the stack's
    placeholder takes); ValueError when there is none."""
    text = (raw.decode("utf-8") if isinstance(raw, bytes) else raw).strip()
    if text.startswith("{"):
        value = json.loads(text).get("secret")
        text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise ValueError("the webhook secret is empty")
    return text


def fetch_secret(secret_id: str) -> str | bytes:
    # As stepline.handlers.wiring reads the keys: powertools' parameters utility, its own cache
    # bypassed (force_fetch), since the holder above decides when to read again.
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_secret(secret_id, force_fetch=True)
    if isinstance(value, dict):  # only with a transform, which we never ask for
        return json.dumps(value)
    return value or ""
