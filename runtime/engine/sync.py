"""App sync, both ways: asking an app to sync (``sync_app``, what `POST /v1/apps/sync` does), and
what `POST /fn/register` does once the body it then sends is parsed and validated (``Registry``;
what it refuses is ``stepline.engine.sync_guard``)."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import urllib3

from stepline.check.on_sync import warn_on_sync
from stepline.engine.crons import Crons
from stepline.engine.http import CallFailed, Sender
from stepline.engine.keys import KeyRing
from stepline.engine.outbound import AddressPolicy, AddressRefused, pool_manager, redact_in, redact_url
from stepline.engine.ports import AppRecord, AppStore, Clock, FunctionRecord
from stepline.engine.sync_guard import check_sync, move_token, origin
from stepline.protocol.register import DEPLOY_ID_PARAM, AppSync
from stepline.protocol.signing import sign
from stepline.protocol.urls import same_serve_url, set_query_param
from stepline.settings import Settings

log = logging.getLogger(__name__)

# What is read of an app's answer to a sync PUT: enough for its error message.
SYNC_ANSWER_BYTES = 4096


@dataclass
class SyncAnswer:
    """How an app answered the sync request: ``ok`` when with a 2xx; else its last status (None
    when it never answered) and what it said, redacted."""

    ok: bool
    status: int | None = None
    said: str = ""


def sync_app(
    url: str,
    settings: Settings,
    *,
    signing_key: str | None = None,
    force: bool = False,
    attempts: int = 60,
    interval_s: float = 1.0,
    stop: threading.Event | None = None,
    private: Sender | None = None,
) -> SyncAnswer:
    """PUT the app URL until it answers 2xx, retrying while it starts up. The SDK then POSTs its
    config to /fn/register.

    With a signing key (``signing_key``, else the settings') the PUT is signed (over the empty
    body), so an SDK that refuses unsigned
    syncs (Stepline's own, outside dev mode) takes it. ``force`` adds a move token as
    ``deployId``, which the SDK passes on to the register request: the one way to move an
    existing app to another origin (``stepline.engine.sync_guard``). The PUT goes only where
    the address policy allows, follows no redirect, and its answer is read up to a few KB.

    No X-Inngest-Server-Kind header: the SDK would reject a PUT whose kind differs from its own
    mode, and leaving it out is always accepted (docs/protocol.md §2.3).

    ``private`` carries the PUT instead, for an app reached privately (a direct Lambda invoke or a
    SigV4-signed function URL, ``stepline.engine.app_targets``).
    """
    http = pool_manager(AddressPolicy.from_settings(settings))
    key = signing_key or settings.signing_key
    target = url
    if force and key:
        target = set_query_param(url, DEPLOY_ID_PARAM, move_token(key, origin(url), int(time.time())))
    shown = redact_url(url)
    stop = stop or threading.Event()
    last = SyncAnswer(False)
    for attempt in range(attempts):
        headers = {}
        if key:
            headers["X-Inngest-Signature"] = sign(b"", key, int(time.time()))
        if private is not None:
            last = _private_put(private, target, headers, url)
            if last.ok:
                log.info("synced app %s", shown)
                return last
            if stop.wait(interval_s):
                break
            continue
        try:
            resp = http.request(
                "PUT",
                target,
                body=b"",
                headers=headers,
                timeout=urllib3.Timeout(connect=2, read=30),
                redirect=False,
                preload_content=False,
            )
            answer = resp.read(SYNC_ANSWER_BYTES)
            resp.release_conn()
            if 200 <= resp.status < 300:
                log.info("synced app %s", shown)
                return SyncAnswer(True, resp.status)
            said = redact_in(answer[:300].decode(errors="replace"), url)
            log.warning("sync of %s answered %s: %s", shown, resp.status, said)
            last = SyncAnswer(False, resp.status, said)
        except urllib3.exceptions.HTTPError as exc:
            if isinstance(exc, AddressRefused):
                said = redact_in(str(exc).split(": ", 1)[-1], url)
                log.error("could not sync app %s: %s", shown, said)
                return SyncAnswer(False, None, said)
            if attempt == 0:
                log.info("waiting for app %s (%s)", shown, type(exc).__name__)
        if stop.wait(interval_s):
            break
    log.error("could not sync app %s", shown)
    return last


def _private_put(private: Sender, target: str, headers: dict[str, str], url: str) -> SyncAnswer:
    try:
        resp = private.send("PUT", target, b"", headers, 30)
    except CallFailed as exc:
        return SyncAnswer(False, None, redact_in(str(exc), url))
    if 200 <= resp.status < 300:
        return SyncAnswer(True, resp.status)
    said = redact_in(resp.body[:300].decode(errors="replace"), url)
    log.warning("sync of %s answered %s: %s", redact_url(url), resp.status, said)
    return SyncAnswer(False, resp.status, said)


class Registry:
    def __init__(
        self,
        apps: AppStore,
        clock: Clock,
        crons: Crons,
        settings: Settings,
        keys: KeyRing,
    ) -> None:
        self.apps = apps
        self.clock = clock
        self.crons = crons
        self.settings = settings
        # The signing keys a move token is checked against (re-read when rotated, deployed).
        self.keys = keys

    def register(self, sync: AppSync, *, move_token_value: str | None = None) -> bool:
        """Store the app and replace its function set. Returns whether anything changed.
        Raises ``SyncRefused`` for a sync that may not be stored (``stepline.engine.sync_guard``);
        ``move_token_value`` is the register request's ``deployId``, when it has one."""
        functions = [
            FunctionRecord(
                fn_id=fn.id,
                app_id=sync.app_id,
                name=fn.name or fn.id,
                url=fn.url,
                config=fn.normalized(),
                event_triggers=sorted({t.event for t in fn.triggers if t.event}),
            )
            for fn in sync.functions
        ]
        previous = self.apps.get_app(sync.app_id)
        # One serve URL serves one app: another app registered there is what this URL used to
        # serve (the app was renamed, or another one took its port). Left registered, its
        # functions would start runs on events that only this app's code now answers.
        stale = [a for a in self.apps.list_apps() if a.app_id != sync.app_id and same_serve_url(a.url, sync.url)]
        stored = {fn.fn_id: self.apps.get_function(fn.fn_id) for fn in functions}
        # A function of the app this URL used to serve is this app's to take over.
        owners = {k: v for k, v in stored.items() if v is None or v.app_id not in {a.app_id for a in stale}}
        check_sync(
            sync,
            previous,
            owners,
            self.settings,
            list(self.keys.current().signing_keys),
            move_token_value=move_token_value or sync.deploy_id,
            now_s=self.clock.now_ms() // 1000,
        )
        modified = previous is None or previous.url != sync.url or self._changed(previous, functions, stored)
        self.apps.put_app(
            AppRecord(
                app_id=sync.app_id,
                url=sync.url,
                synced_at=self.clock.now_ms(),
                sdk=sync.sdk or "",
                framework=sync.framework or "",
                app_version=sync.app_version or "",
                function_ids=[f.fn_id for f in functions],
            ),
            functions,
        )
        self.crons.sync_app(sync.app_id, functions)
        for app in stale:
            log.info("app %r now serves %s: removing %r, which was registered there", sync.app_id, sync.url, app.app_id)
            self.crons.sync_app(app.app_id, [])
            self.apps.delete_app(app.app_id)
        if modified or stale:
            # Only when something changed: `stepline dev` re-syncs live apps every few seconds.
            warn_on_sync(sync)
        return modified or bool(stale)

    def _changed(
        self, previous: AppRecord, functions: list[FunctionRecord], stored: dict[str, FunctionRecord | None]
    ) -> bool:
        if sorted(previous.function_ids) != sorted(f.fn_id for f in functions):
            return True
        for fn in functions:
            before = stored.get(fn.fn_id)
            if before is None or before.config != fn.config or before.url != fn.url:
                return True
        return False
