"""What a sync may not do outside dev mode, so that a sync cannot take an app over.

A register request is authenticated (the signing key's bearer), but what it says comes from an
SDK, and an SDK that accepts unsigned sync requests builds its URL from the request's ``Host``
and ``X-Forwarded-*`` headers: whoever can reach the app can make it register an origin of their
choosing, and Stepline would then send every call, events and step results included, there.
So outside dev mode:

* an app already registered stays on its origin (scheme, host, port): a sync from another one is
  refused, unless the origin is in ``allowed_app_origins`` or the sync is forced, which takes a
  move token only the signing key can make (``POST /v1/apps/sync`` with ``"force": true`` sends
  it to the app as ``deployId``, and the SDKs pass that on to ``/fn/register``);
* every function's call URL is on the app's origin;
* an app URL that names a refused address outright (``127.0.0.1``, ``localhost``, the metadata
  service) is refused at once; names are judged when connected to (``stepline.engine.outbound``).

In every mode, a sync cannot claim a function id another app has registered.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from urllib.parse import urlsplit

from stepline.engine.outbound import AddressPolicy, redact_url
from stepline.engine.records import AppRecord, FunctionRecord
from stepline.protocol.register import AppSync
from stepline.protocol.signing import strip_key_prefix
from stepline.settings import Settings

MOVE_TOKEN_PREFIX = "stepline-move-"
MOVE_TOKEN_TTL_S = 10 * 60
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


class SyncRefused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def origin(url: str) -> str:
    """``scheme://host[:port]``, lower-cased, the default port left out."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}" + (f":{port}" if port and port != _DEFAULT_PORTS.get(scheme) else "")


def move_token(signing_key: str, to_origin: str, now_s: int) -> str:
    """A token that lets one app move to ``to_origin`` within ``MOVE_TOKEN_TTL_S``."""
    expires = now_s + MOVE_TOKEN_TTL_S
    return f"{MOVE_TOKEN_PREFIX}{expires}-{_mac(signing_key, to_origin, expires)}"


def move_allowed(token: str | None, to_origin: str, keys: list[str], now_s: int) -> bool:
    if not token or not token.startswith(MOVE_TOKEN_PREFIX):
        return False
    expires_text, _, mac = token[len(MOVE_TOKEN_PREFIX) :].partition("-")
    if not expires_text.isdigit() or int(expires_text) < now_s:
        return False
    return any(hmac.compare_digest(mac, _mac(key, to_origin, int(expires_text))) for key in keys)


def _mac(key: str, to_origin: str, expires: int) -> str:
    text = f"move|{to_origin}|{expires}".encode()
    return hmac.new(strip_key_prefix(key).encode(), text, hashlib.sha256).hexdigest()[:40]


def check_sync(
    sync: AppSync,
    previous: AppRecord | None,
    owners: dict[str, FunctionRecord | None],
    settings: Settings,
    signing_keys: list[str],
    *,
    move_token_value: str | None,
    now_s: int,
) -> None:
    """Raise ``SyncRefused`` when the sync may not be stored. ``owners`` maps each function id
    of the sync to its record as stored (None when new)."""
    for index, fn in enumerate(sync.functions):
        owner = owners.get(fn.id)
        if owner is not None and owner.app_id != sync.app_id:
            raise SyncRefused(
                409, f"functions[{index}].id: {fn.id!r} belongs to app {owner.app_id!r}; function ids are unique"
            )
    if settings.mode == "dev":
        return
    app_origin = origin(sync.url)
    _check_literal_address(sync.url, settings)
    for index, fn in enumerate(sync.functions):
        if origin(fn.url) != app_origin:
            raise SyncRefused(
                400,
                f"functions[{index}].steps.step.runtime.url: {redact_url(fn.url)} is not on the app's origin "
                f"{app_origin}; Stepline calls functions only where the app is served",
            )
    if previous is None or origin(previous.url) == app_origin:
        return
    allowed = {origin(o) for o in settings.allowed_app_origins}
    if app_origin in allowed or move_allowed(move_token_value, app_origin, signing_keys, now_s):
        return
    raise SyncRefused(
        409,
        f"url: app {sync.app_id!r} is served from {origin(previous.url)}; a sync may not move it to {app_origin}. "
        'To move it, ask it to sync with POST /v1/apps/sync {"url": ..., "force": true}, '
        "or list the origin in allowed_app_origins",
    )


def _check_literal_address(url: str, settings: Settings) -> None:
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return
    if host == "localhost" or host.endswith(".localhost"):
        host = "127.0.0.1"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return  # a name: judged on the addresses it has when connected to
    reason = AddressPolicy.from_settings(settings).refusal(host)
    if reason is not None:
        raise SyncRefused(
            400,
            f"url: {redact_url(url)} is refused: {reason}. Stepline does not call internal addresses outside "
            "dev mode (allow_private_app_urls admits private and loopback ones, for apps inside a VPC)",
        )
