"""What the key secrets hold, and how it is read: by the deployed Lambdas
(``stepline.handlers.wiring``) and by an app's SDK deployed beside them
(``stepline.sdk.key_secrets``). Pure parsing: no AWS, no engine.

Each secret holds its keys as plain text or as JSON, and its first character tells which (``{``
for an object, ``[`` for the event keys' list); both are read by ``_json_or_text``. No error
carries the secret's text: it may reach a log."""

from __future__ import annotations

import json
import re
from typing import Any

from stepline.protocol.signing import hash_signing_key


class SecretFormatError(ValueError):
    """A secret that does not hold keys in a form we read. Never carries the secret's text."""


def _json_or_text(what: str, text: str, opener: str) -> Any:
    """The secret's text, stripped; or the JSON value it holds, when it starts with ``opener``."""
    text = text.strip()
    if not text.startswith(opener):
        return text
    try:
        return json.loads(text)
    except ValueError:
        raise SecretFormatError(f"{what}: starts with {opener!r} but is not JSON") from None


def _member(what: str, data: Any, field: str, shape: str) -> str:
    """The JSON object's string ``field``, stripped; else the error shows the ``shape`` expected."""
    value = data.get(field) if isinstance(data, dict) else None
    if not isinstance(value, str):
        raise SecretFormatError(f"{what}: JSON must be {shape}")
    return value.strip()


def _hex_key(what: str, field: str, key: str, form: str) -> str:
    """``key`` if it is a key the signing code takes (hex, with an optional ``signkey-`` prefix)."""
    if not key:
        raise SecretFormatError(f"{what}: {field} is empty")
    try:
        hash_signing_key(key)
    except ValueError:
        raise SecretFormatError(f"{what}: {field} must be {form}") from None
    return key


def parse_signing_key_secret(text: str) -> tuple[str, str | None]:
    """(signing key, fallback) from the key itself, or from JSON
    ``{"signing_key": ..., "signing_key_fallback": ...}`` (the fallback optional; empty is none)."""
    what, form = "signing key secret", "hex, optionally prefixed 'signkey-<env>-'"
    value = _json_or_text(what, text, "{")
    if isinstance(value, str):
        return _hex_key(what, "signing_key", value, form), None
    primary = _member(what, value, "signing_key", '{"signing_key": "<key>", ...}')
    fallback = value.get("signing_key_fallback")
    if fallback is not None and not isinstance(fallback, str):
        raise SecretFormatError(f"{what}: signing_key_fallback must be a string")
    primary = _hex_key(what, "signing_key", primary, form)
    fallback = (fallback or "").strip()
    return primary, _hex_key(what, "signing_key_fallback", fallback, form) if fallback else None


def parse_operator_key_secret(text: str) -> str:
    """The operator key, alone or as JSON ``{"operator_key": ...}``: hex, like a signing key."""
    what = "operator key secret"
    value = _json_or_text(what, text, "{")
    if not isinstance(value, str):
        value = _member(what, value, "operator_key", '{"operator_key": "<key>"}')
    return _hex_key(what, "operator_key", value, "hex")


def parse_event_keys_secret(text: str) -> list[str]:
    """Event keys separated by commas or newlines, or a JSON list of strings."""
    what = "event keys secret"
    value = _json_or_text(what, text, "[")
    if isinstance(value, str):
        keys = re.split(r"[,\n]", value)
    elif all(isinstance(k, str) for k in value):
        keys = value
    else:
        raise SecretFormatError(f"{what}: the JSON list must hold strings only")
    keys = [k.strip() for k in keys if k.strip()]
    if not keys:
        raise SecretFormatError(f"{what}: holds no key")
    return keys


__all__ = ["SecretFormatError", "parse_event_keys_secret", "parse_operator_key_secret", "parse_signing_key_secret"]
