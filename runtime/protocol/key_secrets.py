"""What the key secrets hold, and how it is read: by the deployed Lambdas
(``stepline.handlers.wiring``) and by an app's SDK deployed beside them
(``stepline.sdk.key_secrets``). Pure parsing: no AWS, no engine."""

from __future__ import annotations

import json
import re

from stepline.protocol.signing import hash_signing_key


class SecretFormatError(ValueError):
    """A secret that does not hold keys in a form we read. Never carries the secret's text."""


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


def parse_operator_key_secret(text: str) -> str:
    """The operator key, alone or as JSON ``{"operator_key": ...}``: hex, like a signing key."""
    text = text.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            raise SecretFormatError("operator key secret: starts with '{' but is not JSON") from None
        if not isinstance(data, dict) or not isinstance(data.get("operator_key"), str):
            raise SecretFormatError('operator key secret: JSON must be {"operator_key": "<key>"}')
        text = data["operator_key"].strip()
    if not text:
        raise SecretFormatError("operator key secret: operator_key is empty")
    try:
        hash_signing_key(text)
    except ValueError:
        raise SecretFormatError("operator key secret: operator_key must be hex") from None
    return text


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


__all__ = ["SecretFormatError", "parse_event_keys_secret", "parse_operator_key_secret", "parse_signing_key_secret"]
