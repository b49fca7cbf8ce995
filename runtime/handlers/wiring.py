"""Builds the engine a Lambda runs on, from the environment the stack sets (stepline.settings).
Done once per container, at the first invocation, and reused while the container is warm.

Deployed, the signing key and the event keys are not in the environment: the settings name their
Secrets Manager secrets, read here at cold start (``resolve_secrets``). A rotated key reaches a
container when the container is replaced, which the stack's ``keysRevision`` forces.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable

from stepline.engine.core import Engine
from stepline.protocol.signing import hash_signing_key
from stepline.settings import Settings

log = logging.getLogger(__name__)

_engine: Engine | None = None
_lock = threading.Lock()

# A secret's text by its id (name or ARN).
SecretFetcher = Callable[[str], "str | bytes"]


class SecretFormatError(ValueError):
    """A secret that does not hold keys in a form we read. Never carries the secret's text."""


def engine_from_env() -> Engine:
    global _engine
    if _engine is None:
        with _lock:
            if _engine is None:
                from stepline.aws import open_aws_backend
                from stepline.aws.resources import AwsNames

                settings = resolve_secrets(Settings.from_env())
                _engine = Engine(open_aws_backend(AwsNames.from_settings(settings), clock=None), settings)
    return _engine


def reset() -> None:
    """Forget the engine, as a new container would (the next call builds it and reads the
    secrets again)."""
    global _engine
    with _lock:
        _engine = None


def resolve_secrets(settings: Settings, fetch: SecretFetcher | None = None) -> Settings:
    """``settings`` with the keys read from the secrets they name; unchanged when they name none.

    A key read from a secret replaces one given in the environment.
    """
    if not (settings.signing_key_secret_id or settings.event_keys_secret_id):
        return settings
    fetch = fetch or _fetch_secret
    updates: dict[str, object] = {}
    if settings.signing_key_secret_id:
        primary, fallback = parse_signing_key_secret(_text(fetch(settings.signing_key_secret_id)))
        updates["signing_key"] = primary
        updates["signing_key_fallback"] = fallback
    if settings.event_keys_secret_id:
        updates["event_keys"] = parse_event_keys_secret(_text(fetch(settings.event_keys_secret_id)))
    log.info(
        "keys read from Secrets Manager (signing key: %s, fallback: %s, event keys: %s, revision: %s)",
        "yes" if updates.get("signing_key") else "no",
        "yes" if updates.get("signing_key_fallback") else "no",
        len(updates.get("event_keys") or []),  # type: ignore[arg-type]
        settings.keys_revision or "-",
    )
    return settings.model_copy(update=updates)


def parse_signing_key_secret(text: str) -> tuple[str, str | None]:
    """(signing key, fallback) from the key itself, or from JSON
    ``{"signing_key": ..., "signing_key_fallback": ...}`` (the fallback optional)."""
    text = text.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            raise SecretFormatError("signing key secret: starts with '{' but is not JSON") from None
        if not isinstance(data, dict) or not isinstance(data.get("signing_key"), str):
            raise SecretFormatError('signing key secret: JSON must be {"signing_key": "<key>", ...}')
        primary = data["signing_key"].strip()
        fallback = data.get("signing_key_fallback")
        if fallback is not None and not isinstance(fallback, str):
            raise SecretFormatError("signing key secret: signing_key_fallback must be a string")
        fallback = (fallback or "").strip() or None
    else:
        primary, fallback = text, None
    for field, key in (("signing_key", primary), ("signing_key_fallback", fallback)):
        if key is None:
            continue
        try:
            hash_signing_key(key)
        except ValueError:
            raise SecretFormatError(
                f"signing key secret: {field} must be hex, optionally prefixed 'signkey-<env>-'"
            ) from None
    if not primary:
        raise SecretFormatError("signing key secret: signing_key is empty")
    return primary, fallback


def parse_event_keys_secret(text: str) -> list[str]:
    """Event keys separated by commas or newlines, or a JSON list of strings."""
    text = text.strip()
    if text.startswith("["):
        try:
            data = json.loads(text)
        except ValueError:
            raise SecretFormatError("event keys secret: starts with '[' but is not JSON") from None
        if not all(isinstance(k, str) for k in data):
            raise SecretFormatError("event keys secret: the JSON list must hold strings only")
        keys = [k.strip() for k in data]
    else:
        keys = [k.strip() for k in re.split(r"[,\n]", text)]
    keys = [k for k in keys if k]
    if not keys:
        raise SecretFormatError("event keys secret: holds no key")
    return keys


def _text(value: str | bytes | None) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return value or ""


def _fetch_secret(secret_id: str) -> str | bytes:
    # Imported here: only deployed Lambdas read secrets, and powertools' parameters utility
    # makes its boto3 client on first use.
    from aws_lambda_powertools.utilities import parameters

    # force_fetch: this runs once per container, and a value cached for a previous engine (a
    # reset) must not outlive a rotation.
    value = parameters.get_secret(secret_id, force_fetch=True)
    if isinstance(value, dict):  # only with a transform, which we never ask for
        return json.dumps(value)
    return value or ""
