"""The SDK's keys read from Secrets Manager, for an app deployed beside Stepline on Lambda.

The app construct (``infra/app_function.py``) gives the app the ids of the stack's key secrets,
never the keys: ``STEPLINE_SIGNING_KEY_SECRET_ID`` and ``STEPLINE_EVENT_KEY_SECRET_ID`` (or the
``INNGEST_`` spellings). The secrets are read once per container, at the first request that needs
a key (a cold start), in the formats the runtime reads them in (``stepline.protocol.key_secrets``);
the event key is the first of the event keys. A key given to the client, or in the environment,
wins over a secret (``stepline.sdk.env`` decides, and names the secret to read here).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable

from stepline.protocol.key_secrets import parse_event_keys_secret, parse_signing_key_secret

# The secret's text by its id; boto3's Secrets Manager unless a test gives another.
Fetch = Callable[[str], str]
_lock = threading.Lock()


@functools.cache
def _read(secret_id: str) -> str:
    import boto3  # only apps that name a secret need boto3 (it is in the Lambda runtime)

    return str(boto3.client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"])


def signing_keys(secret_id: str | None, fetch: Fetch | None = None) -> tuple[str | None, str | None]:
    """(signing key, fallback) from the secret ``secret_id`` names; (None, None) when none."""
    if not secret_id:
        return None, None
    with _lock:
        return parse_signing_key_secret((fetch or _read)(secret_id))


def event_key(secret_id: str | None, fetch: Fetch | None = None) -> str | None:
    """The first event key of the secret ``secret_id`` names; None when none."""
    if not secret_id:
        return None
    with _lock:
        return parse_event_keys_secret((fetch or _read)(secret_id))[0]
