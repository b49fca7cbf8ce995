"""Builds the engine a Lambda runs on, from the environment the stack sets (stepline.settings).
Done once per container, at the first invocation, and reused while the container is warm.

Deployed, the keys are not in the environment: the settings name their Secrets Manager secrets,
read here at cold start and again once they are ``keys_refresh_s`` old (at most five minutes), so
a rotated or revoked key stops working within that time without a deploy
(``stepline.engine.keys.RefreshingKeys``; ``keysRevision`` still forces a read at once).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable

from stepline.engine.clock import SystemClock
from stepline.engine.core import Engine
from stepline.engine.keys import KeyRing, Keys, RefreshingKeys, StaticKeys
from stepline.engine.ports import Clock

# SecretFormatError is re-exported: what reading the stack's secrets raises.
from stepline.protocol.key_secrets import SecretFormatError as SecretFormatError
from stepline.protocol.key_secrets import (
    parse_event_keys_secret,
    parse_operator_key_secret,
    parse_signing_key_secret,
)
from stepline.settings import Settings
from stepline.telemetry.metrics import EmfMetrics
from stepline.telemetry.setup import telemetry_from_env

log = logging.getLogger(__name__)

_engine: Engine | None = None
_lock = threading.Lock()

# A secret's text by its id (name or ARN).
SecretFetcher = Callable[[str], "str | bytes"]


def engine_from_env(clock: Clock | None = None) -> Engine:
    """The container's engine, built on first use. ``clock`` (tests) times the key re-reads; the
    AWS adapters keep to real time either way."""
    global _engine
    if _engine is None:
        with _lock:
            if _engine is None:
                from stepline.aws import open_aws_backend
                from stepline.aws.app_callers import app_caller
                from stepline.aws.resources import AwsNames

                settings = Settings.from_env()
                keys = key_ring(settings, clock or SystemClock())
                backend = open_aws_backend(
                    AwsNames.from_settings(settings), clock=None, retention_ms=settings.retention_ms
                )
                # Apps are called over HTTP, or privately: SigV4 function URLs, direct invokes.
                # Metrics as CloudWatch EMF lines, flushed at the end of each invocation
                # (stepline.handlers); traces when OTEL_* configures an exporter.
                telemetry = telemetry_from_env(None, EmfMetrics())
                _engine = Engine(backend, settings, keys=keys, caller=app_caller(settings), telemetry=telemetry)
    return _engine


def reset() -> None:
    """Forget the engine, as a new container would (the next call builds it and reads the
    secrets again)."""
    global _engine
    with _lock:
        _engine = None


def names_secrets(settings: Settings) -> bool:
    return bool(settings.signing_key_secret_id or settings.event_keys_secret_id or settings.operator_key_secret_id)


def key_ring(settings: Settings, clock: Clock, fetch: SecretFetcher | None = None) -> KeyRing:
    """The keys as the settings give them; when they name secrets, read from those now and again
    every ``keys_refresh_s``."""
    if not names_secrets(settings):
        return StaticKeys(Keys.from_settings(settings))
    return RefreshingKeys(lambda: read_keys(settings, fetch), clock, max_age_ms=int(settings.keys_refresh_s * 1000))


def read_keys(settings: Settings, fetch: SecretFetcher | None = None) -> Keys:
    """The keys, each read from the secret the settings name for it, else as the settings hold
    it: a key read from a secret replaces one given in the environment."""
    return Keys.from_settings(resolve_secrets(settings, fetch))


def resolve_secrets(settings: Settings, fetch: SecretFetcher | None = None) -> Settings:
    """``settings`` with the keys read from the secrets they name; unchanged when they name none."""
    if not names_secrets(settings):
        return settings
    fetch = fetch or _fetch_secret
    updates: dict[str, object] = {}
    if settings.signing_key_secret_id:
        primary, fallback = parse_signing_key_secret(_text(fetch(settings.signing_key_secret_id)))
        updates["signing_key"] = primary
        updates["signing_key_fallback"] = fallback
    if settings.event_keys_secret_id:
        updates["event_keys"] = parse_event_keys_secret(_text(fetch(settings.event_keys_secret_id)))
    if settings.operator_key_secret_id:
        updates["operator_key"] = parse_operator_key_secret(_text(fetch(settings.operator_key_secret_id)))
    log.info(
        "keys read from Secrets Manager (signing key: %s, fallback: %s, event keys: %s, operator key: %s, "
        "revision: %s)",
        "yes" if updates.get("signing_key") else "no",
        "yes" if updates.get("signing_key_fallback") else "no",
        len(updates.get("event_keys") or []),  # type: ignore[arg-type]
        "yes" if updates.get("operator_key") else "no",
        settings.keys_revision or "-",
    )
    return settings.model_copy(update=updates)


def _text(value: str | bytes | None) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return value or ""


def _fetch_secret(secret_id: str) -> str | bytes:
    # Imported here: only deployed Lambdas read secrets, and powertools' parameters utility
    # makes its boto3 client on first use.
    from aws_lambda_powertools.utilities import parameters

    # force_fetch: the key ring decides when to read again; powertools' own cache must not serve
    # a value older than that.
    value = parameters.get_secret(secret_id, force_fetch=True)
    if isinstance(value, dict):  # only with a transform, which we never ask for
        return json.dumps(value)
    return value or ""
