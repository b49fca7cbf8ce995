"""`stepline dev` finds apps by itself and keeps them synced, the way Inngest's dev server does.

What it watches: the URLs given with ``-u``, and, unless discovery is off (``--no-discovery``),
the usual local serve endpoints: 127.0.0.1 on ports 3000, 3001, 5000, 8000 and 8080, at
``/api/inngest`` and ``/x/inngest``. Every poll (``--poll-interval``, 5 s) each one is asked to
sync: a PUT, after which the SDK POSTs its functions to ``/fn/register`` on the server its
``INNGEST_DEV`` names. A sync that changes nothing changes nothing (``Registry.register``), so an
app that started, restarted, reloaded with new code or moved to another port is registered
within one poll, and one that did not costs a request. A URL given with ``-u`` that has not
synced yet is asked every second: its app is usually starting alongside.

An app can answer at two URLs for a while: moved to another port, its old process still up. The
copy that appeared last holds the registration; the older URL is not asked to sync while the
newer one answers as the same app, so the old copy never takes the registration back.

With a poll interval of 0 each ``-u`` URL is synced once, when it first answers, and nothing is
discovered: what `stepline dev` did before it polled.
"""

from __future__ import annotations

import enum
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import urllib3

from stepline.engine.outbound import AddressPolicy, AddressRefused, pool_manager, redact_in, redact_url
from stepline.engine.sync import SYNC_ANSWER_BYTES
from stepline.protocol.signing import sign
from stepline.protocol.urls import same_serve_url

if TYPE_CHECKING:
    from stepline.engine.ports import AppStore

log = logging.getLogger(__name__)

DISCOVERY_HOST = "127.0.0.1"
DISCOVERY_PORTS = (3000, 3001, 5000, 8000, 8080)
DISCOVERY_PATHS = ("/api/inngest", "/x/inngest")
POLL_INTERVAL_S = 5.0
# How often a -u URL that has never synced is asked again.
STARTUP_RETRY_S = 1.0
# A local app answers a connection at once or not at all; the sync itself may take a while
# (the SDK registers with this server before it answers).
CONNECT_TIMEOUT_S = 1.0
SYNC_TIMEOUT_S = 30.0


def discovery_urls(host: str = DISCOVERY_HOST, ports: tuple[int, ...] = DISCOVERY_PORTS) -> list[str]:
    return [f"http://{host}:{port}{path}" for port in ports for path in DISCOVERY_PATHS]


def discovery_summary() -> str:
    """Where discovery looks, for `stepline dev` to say at start."""
    ports = ", ".join(str(p) for p in DISCOVERY_PORTS)
    return f"{DISCOVERY_HOST} ports {ports}, paths {' and '.join(DISCOVERY_PATHS)}"


class Answer(enum.Enum):
    SYNCED = "synced"  # the app answered the sync with 2xx
    REFUSED = "refused"  # something answered, but not with a sync (no SDK there, or it failed)
    SILENT = "silent"  # nothing listens there


@dataclass
class Watched:
    """One URL the watcher asks to sync."""

    url: str
    explicit: bool  # given with -u: watched even while it does not answer, and its silence is told
    up_since: float | None = None  # when it began answering this time (monotonic); None while silent
    synced_once: bool = False
    app_id: str | None = None  # the app its last sync registered, when this server holds it
    superseded_by: str | None = None  # the newer URL of the same app, while that one answers
    next_at: float = 0.0
    told: set[str] = field(default_factory=set)  # what was logged, so each news is told once


class AppWatcher:
    def __init__(
        self,
        store: AppStore,
        urls: list[str],
        *,
        discover: bool = False,
        poll_interval_s: float = POLL_INTERVAL_S,
        discovery_host: str = DISCOVERY_HOST,
        discovery_ports: tuple[int, ...] = DISCOVERY_PORTS,
        own_port: int | None = None,
        signing_key: str | None = None,
        policy: AddressPolicy | None = None,
    ) -> None:
        self.store = store
        # With a key the PUT is signed: an SDK that refuses unsigned syncs (Stepline's, outside
        # dev mode) takes it. The policy says where it may connect (stepline.engine.outbound).
        self.signing_key = signing_key
        self.poll_interval_s = poll_interval_s
        self.discover = discover and poll_interval_s > 0
        self.watched: list[Watched] = [Watched(url, explicit=True) for url in dict.fromkeys(urls)]
        if self.discover:
            known = set(urls)
            ports = tuple(p for p in discovery_ports if p != own_port)
            self.watched += [
                Watched(u, explicit=False) for u in discovery_urls(discovery_host, ports) if u not in known
            ]
        self.http = pool_manager(policy or AddressPolicy(check=False))
        self._thread: threading.Thread | None = None

    def start(self, stop: threading.Event) -> None:
        self._thread = threading.Thread(target=self._loop, args=(stop,), name="stepline-app-watcher", daemon=True)
        self._thread.start()

    def _loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.poll(time.monotonic())
            except Exception:  # noqa: BLE001 - the next poll tries again
                log.exception("watching apps failed")
            next_at = min((w.next_at for w in self.watched), default=float("inf"))
            if next_at == float("inf"):
                return  # nothing left to ask (a poll interval of 0, every -u URL synced)
            stop.wait(max(0.05, next_at - time.monotonic()))

    def poll(self, now: float) -> None:
        """Ask every URL that is due to sync, the longest-answering first, so that when two
        answer as one app the newer one is asked last and keeps the registration."""
        due = [w for w in self.watched if w.next_at <= now]
        due.sort(key=lambda w: (w.up_since is None, w.up_since or 0.0))
        for watched in due:
            newer = self._newer_copy(watched)
            if newer is not None:
                if watched.superseded_by != newer.url:
                    log.info(
                        "app %r moved to %s; no longer syncing its copy at %s",
                        watched.app_id,
                        redact_url(newer.url),
                        redact_url(watched.url),
                    )
                watched.superseded_by = newer.url
            else:
                watched.superseded_by = None
                self._sync(watched, now)
            watched.next_at = now + self._interval(watched)

    def _interval(self, watched: Watched) -> float:
        if watched.explicit and not watched.synced_once:
            return STARTUP_RETRY_S
        return self.poll_interval_s if self.poll_interval_s > 0 else float("inf")

    def _newer_copy(self, watched: Watched) -> Watched | None:
        if watched.app_id is None or watched.up_since is None:
            return None
        for other in self.watched:
            if (
                other is not watched
                and other.app_id == watched.app_id
                and other.up_since is not None
                and other.up_since > watched.up_since
            ):
                return other
        return None

    def _sync(self, watched: Watched, now: float) -> None:
        answer, modified, detail = self._put(watched.url)
        if answer is Answer.SILENT:
            if watched.up_since is not None and watched.synced_once:
                log.info("app at %s stopped answering; it is synced again when it comes back", redact_url(watched.url))
            elif watched.explicit and not watched.synced_once and "waiting" not in watched.told:
                log.info("waiting for an app at %s (%s)", redact_url(watched.url), detail)
                watched.told.add("waiting")
            watched.up_since = None
            return
        if watched.up_since is None:
            watched.up_since = now
        if answer is Answer.REFUSED:
            # A discovered port may well serve something else: only a -u URL is worth a warning.
            if watched.explicit and detail not in watched.told:
                log.warning("sync of %s answered %s", redact_url(watched.url), redact_in(detail, watched.url))
                watched.told.add(detail)
            return
        first = not watched.synced_once
        watched.synced_once = True
        watched.told.clear()
        watched.app_id = self._app_at(watched.url) or watched.app_id
        if first or modified:
            name = f" ({watched.app_id})" if watched.app_id else ""
            log.info("synced app %s%s", redact_url(watched.url), name)

    def _put(self, url: str) -> tuple[Answer, bool, str]:
        """The sync request: how the URL answered, whether the registration changed (the SDKs
        relay this server's ``modified``), and what went wrong.

        No X-Inngest-Server-Kind header: the SDK would reject a PUT whose kind differs from its
        own mode, and leaving it out is always accepted (docs/protocol.md §2.3).
        """
        headers = {"X-Inngest-Signature": sign(b"", self.signing_key, int(time.time()))} if self.signing_key else {}
        try:
            resp = self.http.request(
                "PUT",
                url,
                body=b"",
                headers=headers,
                timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT_S, read=SYNC_TIMEOUT_S),
                redirect=False,
                preload_content=False,
            )
            data = resp.read(SYNC_ANSWER_BYTES)
            resp.release_conn()
        except AddressRefused as exc:  # an address Stepline may not call: say why, once
            return Answer.REFUSED, False, str(exc).split(": ", 1)[-1]
        except urllib3.exceptions.HTTPError as exc:
            return Answer.SILENT, False, type(exc).__name__
        if not 200 <= resp.status < 300:
            return Answer.REFUSED, False, f"HTTP {resp.status}: {data[:200].decode(errors='replace')}"
        try:
            reply = json.loads(data)
        except ValueError:
            reply = None
        modified = bool(reply.get("modified", True)) if isinstance(reply, dict) else True
        return Answer.SYNCED, modified, ""

    def _app_at(self, url: str) -> str | None:
        """The app registered from ``url`` on this server (None when the app registers with
        another server, or behind a proxy under another URL)."""
        for app in self.store.list_apps():
            if same_serve_url(app.url, url):
                return app.app_id
        return None
