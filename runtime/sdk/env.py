"""Where the server is, and which keys to use, resolved like the official Python SDK
(docs/protocol.md §1.1): constructor argument > specific variable > ``*_BASE_URL`` > a URL in
``*_DEV`` > the mode's default. Each ``INNGEST_X`` variable may also be spelled
``STEPLINE_X``, which wins when both are set.

Resolved on every use, not at import: an app module declares its client at import time, and the
process that runs it (a test, a CLI) may point it at a server afterwards.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Literal

DEV_ORIGIN = "http://127.0.0.1:8288"
CLOUD_API_ORIGIN = "https://api.inngest.com"
CLOUD_EVENT_ORIGIN = "https://inn.gs"
NO_EVENT_KEY = "NO_EVENT_KEY_SET"
_FALSY = {"", "0", "false"}


def env_var(name: str) -> str | None:
    for prefix in ("STEPLINE_", "INNGEST_"):
        value = os.environ.get(prefix + name)
        if value is not None:
            return value
    return None


def _origin(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip().rstrip("/")
    if "://" not in value:
        value = "http://" + value
    return value


def _dev_url(value: str | None) -> str | None:
    """``INNGEST_DEV=http://host:port`` (or ``host:port``) names the dev server; ``1`` does not."""
    if not value or value.strip().lower() in _FALSY:
        return None
    text = value.strip()
    if "://" in text or "." in text or ":" in text:
        return _origin(text)
    return None


@dataclasses.dataclass(frozen=True)
class ClientEnv:
    mode: Literal["dev", "cloud"]
    api_origin: str
    event_api_origin: str
    event_key: str | None
    signing_key: str | None
    signing_key_fallback: str | None
    env: str | None
    serve_origin: str | None
    serve_path: str | None
    unauthed_sync: bool

    @property
    def is_dev(self) -> bool:
        return self.mode == "dev"

    @property
    def signing_keys(self) -> list[str]:
        return [k for k in (self.signing_key, self.signing_key_fallback) if k]


def resolve(
    *,
    dev: bool | None,
    base_url: str | None,
    api_base_url: str | None,
    event_api_base_url: str | None,
    event_key: str | None,
    signing_key: str | None,
    signing_key_fallback: str | None,
    env: str | None,
    serve_origin: str | None,
    serve_path: str | None,
) -> ClientEnv:
    dev_var = env_var("DEV")
    if dev is None:
        dev = dev_var is not None and dev_var.strip().lower() not in _FALSY
    mode: Literal["dev", "cloud"] = "dev" if dev else "cloud"
    shared = _origin(base_url) or _origin(env_var("BASE_URL")) or (_dev_url(dev_var) if dev else None)
    api = _origin(api_base_url) or _origin(env_var("API_BASE_URL")) or shared
    events = _origin(event_api_base_url) or _origin(env_var("EVENT_API_BASE_URL")) or shared
    branch = (
        env
        or env_var("ENV")
        or next(
            (
                os.environ[v]
                for v in ("RAILWAY_GIT_BRANCH", "RENDER_GIT_BRANCH", "VERCEL_GIT_COMMIT_REF")
                if os.environ.get(v)
            ),
            None,
        )
    )
    # Off unless asked for: an unsigned sync registers the URL its Host and X-Forwarded-*
    # headers name, so whoever reaches the app could point the server at an origin of their own.
    # Stepline signs the sync requests it sends. (The official SDKs default to on.)
    unauthed = (env_var("ENABLE_UNAUTHED_SYNC") or "false").strip().lower() not in _FALSY
    signing_key = signing_key or env_var("SIGNING_KEY")
    signing_key_fallback = signing_key_fallback or env_var("SIGNING_KEY_FALLBACK")
    event_key = event_key or env_var("EVENT_KEY")
    if signing_key is None or event_key is None:
        # Deployed beside Stepline: the keys are in Secrets Manager, never in the environment.
        from stepline.sdk import key_secrets

        if signing_key is None:
            signing_key, fallback = key_secrets.signing_keys(env_var("SIGNING_KEY_SECRET_ID"))
            signing_key_fallback = signing_key_fallback or fallback
        event_key = event_key or key_secrets.event_key(env_var("EVENT_KEY_SECRET_ID"))
    return ClientEnv(
        mode=mode,
        api_origin=api or (DEV_ORIGIN if dev else CLOUD_API_ORIGIN),
        event_api_origin=events or (DEV_ORIGIN if dev else CLOUD_EVENT_ORIGIN),
        event_key=event_key or (NO_EVENT_KEY if dev else None),
        signing_key=signing_key,
        signing_key_fallback=signing_key_fallback,
        env=branch,
        serve_origin=serve_origin or env_var("SERVE_ORIGIN"),
        serve_path=serve_path or env_var("SERVE_PATH"),
        unauthed_sync=unauthed,
    )
