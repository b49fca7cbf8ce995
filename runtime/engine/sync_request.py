"""Syncing one app on request, and saying why it failed: what `POST /v1/apps/sync` and the
deploy-time sync (``stepline.handlers.sync_resource``) both do.

The app may be named by its serve URL or, when it is a Lambda function in the same account, by
its function ARN (qualified or not): the ARN is synced at its invoke URL
(``stepline.engine.app_targets``), the PUT going through ``lambda:Invoke``.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from stepline.engine.app_targets import RoutingCaller, TargetKind, is_function_arn, serve_url_for, target_of
from stepline.engine.core import Engine
from stepline.engine.outbound import redact_url
from stepline.engine.records import AppRecord
from stepline.engine.sync import sync_app


class SyncFailed(Exception):
    """The app did not sync; ``status`` is the HTTP status the API answers with, the message
    says why (the deploy fails with it)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Synced:
    url: str  # what was synced: the serve URL, an ARN's invoke URL
    apps: list[AppRecord]


def sync_target(engine: Engine, target: object, *, force: bool = False, attempts: int, interval_s: float) -> Synced:
    """Ask the app at ``target`` (a serve URL or a function ARN, as a request gave it) to sync, and
    check it registered."""
    if not isinstance(target, str) or not target.strip():
        raise SyncFailed(400, f"url: expected the app's http(s) serve URL or Lambda function ARN, got {target!r}")
    if target.startswith("arn:") and not is_function_arn(target):
        raise SyncFailed(400, f"url: {target!r} is not a Lambda function ARN")
    url = serve_url_for(target)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SyncFailed(400, f"url: expected the app's http(s) serve URL or Lambda function ARN, got {target!r}")
    try:
        kind = target_of(url).kind
    except ValueError as bad:
        raise SyncFailed(400, f"url: {bad}") from None
    caller = engine.caller
    private = caller.private_sender(url) if isinstance(caller, RoutingCaller) else None
    if private is None and kind is TargetKind.LAMBDA_INVOKE:
        raise SyncFailed(
            400,
            f"url: {target!r} is a Lambda function, which only a runtime with AWS credentials invokes "
            "(deployed Stepline); here apps are called over HTTP: give the app's serve URL",
        )
    answer = sync_app(
        url,
        engine.settings,
        signing_key=engine.keys.current().signing_key,
        force=force,
        attempts=attempts,
        interval_s=interval_s,
        private=private,
    )
    shown = redact_url(url)
    if not answer.ok and answer.status is None and answer.said:
        raise SyncFailed(502, f"url: Stepline could not call {shown}: {answer.said}")
    if not answer.ok and answer.status is not None:
        raise SyncFailed(
            502,
            f"url: the app at {shown} answered the sync request (PUT) with {answer.status}: "
            f"{answer.said or 'no reason given'}",
        )
    if not answer.ok:
        raise SyncFailed(
            502,
            f"url: the app at {shown} did not answer the sync request (PUT); "
            "is it running and serving its Inngest handler there?",
        )
    synced = [a for a in engine.backend.apps.list_apps() if a.url.split("?")[0] == url.split("?")[0]]
    if not synced:
        # The Python SDK answers 200 even when its register was refused (a move, say).
        raise SyncFailed(
            502,
            f"url: the app at {shown} answered the sync request, but no app registered from there: "
            'its register request was refused (see the app\'s log; moving an app takes "force": true)',
        )
    return Synced(url, synced)
