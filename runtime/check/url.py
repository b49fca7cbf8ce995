"""URL targets: the serve endpoint of an app on any SDK (Stepline's, the official Python, TS or
Go SDKs).

1. ``GET`` the URL: an SDK's serve handler answers with its introspection (``function_count``,
   ``X-Inngest-SDK``). Anything else means no serve handler there.
2. ``PUT`` the URL, which asks the SDK to sync: it POSTs its register payload (every function's
   configuration) to ``/fn/register`` on the server its own environment names
   (``INNGEST_DEV=http://host:port`` or ``INNGEST_BASE_URL``). The checker cannot redirect that,
   so it reads the payload where the app sends it, one of two ways:

   * ``--register-via URL``: the app is pointed at a running Stepline (``stepline dev``); after
     the sync, the checker reads the configuration that server stored (``GET /v1/apps``,
     ``GET /v1/apps/{id}/functions``).
   * ``--listen PORT``: the checker answers ``/fn/register`` itself on ``127.0.0.1:PORT`` for
     the length of the check, and the app is started with ``INNGEST_DEV=http://127.0.0.1:PORT``.
     The payload is read exactly as sent, so what a server would refuse (a duplicate id) shows.

   Given neither, the checker looks where the app most likely registers: ``INNGEST_DEV`` when it
   is a URL (the checker's shell usually shares the app's), else the SDKs' dev default,
   ``http://127.0.0.1:8288``. A server answering there is read as with ``--register-via``; when
   nothing listens there (a loopback address), the checker listens there itself, as with
   ``--listen``, so a check needs nothing else running.

A payload carries configuration only: the checks that read code report "needs source".
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import urllib3

from stepline.check.model import AppView, Sdk, ServeInfo, TargetError
from stepline.check.payload import view_from_register, view_from_stored
from stepline.protocol.errors import ProtocolError
from stepline.protocol.register import parse_register
from stepline.protocol.signing import hash_signing_key

DEFAULT_REGISTER_VIA = "http://127.0.0.1:8288"
# Two clocks (the checker's, the server's) judge "synced after the PUT": allow this much skew.
CLOCK_SLACK_MS = 5_000


class _Reply:
    def __init__(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.status = status
        self.body = body
        self.headers = {k.lower(): v for k, v in headers.items()}

    @property
    def json(self) -> Any:
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None

    def message(self) -> str:
        parsed = self.json
        if isinstance(parsed, dict):
            for key in ("message", "error"):
                if isinstance(parsed.get(key), str):
                    return parsed[key]
        return self.body[:300].decode(errors="replace") or "(empty body)"


class _Http:
    def __init__(self, timeout_s: float) -> None:
        self.pool = urllib3.PoolManager(retries=False)
        self.timeout = urllib3.Timeout(connect=min(timeout_s, 5.0), read=timeout_s)

    def request(self, method: str, url: str, headers: dict[str, str] | None = None) -> _Reply:
        try:
            resp = self.pool.request(
                method, url, headers=headers or {}, body=b"" if method == "PUT" else None, timeout=self.timeout
            )
        except urllib3.exceptions.HTTPError as err:
            # "HTTPConnection(host=..., port=...): Failed to establish..." -> the part after the repr
            reason = str(getattr(err, "reason", None) or err).split("): ", 1)[-1]
            raise TargetError(f"cannot reach {url}: {reason}") from None
        return _Reply(resp.status, resp.data, dict(resp.headers))


def _server_headers() -> dict[str, str]:
    """The bearer a deployed Stepline wants on its API (dev mode takes none)."""
    key = os.environ.get("STEPLINE_SIGNING_KEY") or os.environ.get("INNGEST_SIGNING_KEY")
    return {"authorization": f"Bearer {hash_signing_key(key)}"} if key else {}


def _introspect(http: _Http, url: str) -> tuple[ServeInfo, int | None, str | None]:
    reply = http.request("GET", url)
    body = reply.json
    sdk = reply.headers.get("x-inngest-sdk")
    if isinstance(body, dict) and ("function_count" in body or sdk):
        count = body.get("function_count")
        count = count if isinstance(count, int) and not isinstance(count, bool) else None
        mode = body.get("mode")
        detail = (
            f"{url} is an SDK serve endpoint ({sdk or 'unknown SDK'}"
            + (f", {mode} mode" if isinstance(mode, str) else "")
            + (f", {count} function(s)" if count is not None else "")
            + ")"
        )
        return ServeInfo(True, detail), count, mode if isinstance(mode, str) else None
    what = "a JSON body without an SDK's introspection" if body is not None else "no SDK introspection"
    return (
        ServeInfo(False, f"{url} answered GET with HTTP {reply.status} and {what}: no SDK serve handler answers there"),
        None,
        None,
    )


def inspect_url(
    url: str, *, listen: int | None = None, register_via: str | None = None, timeout_s: float = 30.0
) -> AppView:
    if listen is not None and register_via is not None:
        raise TargetError("--listen and --register-via are two ways to read the sync: give one")
    http = _Http(timeout_s)
    serve, count, mode = _introspect(http, url)
    if not serve.found:
        return AppView(target=url, kind="url", serve=serve)
    if mode == "cloud":
        # A cloud-mode app only syncs on a signed request, which needs the app's signing key.
        hint = (
            "the app runs in cloud mode, where a sync needs a signed request; run it in dev mode "
            "(INNGEST_DEV=...) to check it"
        )
    else:
        hint = None
    if listen is not None:
        return _via_receiver(http, url, listen, serve, count, hint)
    if register_via is None:
        register_via = default_register_via()
        port = _silent_loopback_port(register_via)
        if port is not None:
            view = _via_receiver(http, url, port, serve, count, hint)
            view.notes.append(
                f"nothing listened at {register_via}, where the app registers: the checker received "
                "its registration there itself"
            )
            return view
    return _via_server(http, url, register_via.rstrip("/"), serve, count, hint)


def default_register_via() -> str:
    """Where the app most likely registers: INNGEST_DEV when it is a URL, else the dev default."""
    dev = os.environ.get("INNGEST_DEV", "").strip()
    if dev.lower().startswith(("http://", "https://")):
        return dev.rstrip("/")
    return DEFAULT_REGISTER_VIA


_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _silent_loopback_port(base: str) -> int | None:
    """The port of ``base`` when it is a loopback address nothing listens on, else None."""
    parts = urllib.parse.urlsplit(base)
    if parts.scheme != "http" or parts.hostname not in _LOOPBACK:
        return None
    try:
        port = parts.port or 80
    except ValueError:
        return None
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return None  # something answers: read what it stored
    except OSError:
        return port


# -- --listen: answer /fn/register ourselves ----------------------------------------------------


class _Receiver:
    """A throwaway ``/fn/register`` on 127.0.0.1 that keeps the first body posted to it."""

    def __init__(self, port: int) -> None:
        self.body: bytes | None = None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                path = urllib.parse.urlsplit(self.path).path
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length > 0 else b""
                if not path.rstrip("/").endswith("/fn/register"):
                    self._answer(404, {"error": f"{path}: only /fn/register is served here", "status": 404})
                    return
                if receiver.body is None:
                    receiver.body = body
                # Answer as a Stepline server would, so the app sees the same outcome.
                try:
                    parse_register(body)
                except (ProtocolError, ValueError) as err:
                    self._answer(400, {"error": getattr(err, "message", str(err)), "ok": False, "status": 400})
                    return
                self._answer(200, {"ok": True, "modified": False, "status": 200})

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: Any) -> None:
                pass

        try:
            self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        except OSError as err:
            raise TargetError(
                f"cannot listen on 127.0.0.1:{port}: {err.strerror or err} (if stepline dev "
                f"runs there, use --register-via http://127.0.0.1:{port})"
            ) from None
        self.server.daemon_threads = True
        # A short poll: stopping waits for the loop to notice, and a check should not idle.
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, name="check-receiver", daemon=True
        )
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def _via_receiver(http: _Http, url: str, port: int, serve: ServeInfo, count: int | None, hint: str | None) -> AppView:
    receiver = _Receiver(port)
    try:
        reply = http.request("PUT", url)
    finally:
        receiver.stop()
    if receiver.body is None:
        problem = (
            f"the app answered the sync with HTTP {reply.status} ({reply.message()})"
            if not 200 <= reply.status < 300
            else "the app answered the sync"
        )
        raise TargetError(
            f"{problem}, but posted nothing to 127.0.0.1:{port}/fn/register: start the app with "
            f"INNGEST_DEV=http://127.0.0.1:{port} so it registers with the checker, or use "
            "--register-via with the server it registers with" + (f"; {hint}" if hint else "")
        )
    try:
        raw = json.loads(receiver.body)
    except ValueError:
        raise TargetError("the app posted a register body that is not JSON") from None
    if not isinstance(raw, dict):
        raise TargetError("the app posted a register body that is not a JSON object")
    return view_from_register(raw, target=url, serve=serve, introspected_count=count)


# -- --register-via: read what a running Stepline stored -----------------------------------------


def _same_url(a: str, b: str) -> bool:
    def norm(u: str) -> str:
        parts = urllib.parse.urlsplit(u)
        return f"{parts.scheme}://{parts.netloc.lower()}{parts.path.rstrip('/')}"

    return norm(a) == norm(b)


def _ms(iso: Any) -> int | None:
    if not isinstance(iso, str):
        return None
    try:
        return int(datetime.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return None


def _via_server(http: _Http, url: str, base: str, serve: ServeInfo, count: int | None, hint: str | None) -> AppView:
    started_ms = int(time.time() * 1000)
    reply = http.request("PUT", url)
    if not 200 <= reply.status < 300:
        raise TargetError(
            f"the app's sync failed: HTTP {reply.status}: {reply.message()}. The app registers with "
            f"the server its INNGEST_DEV / INNGEST_BASE_URL names, and --register-via ({base}) must "
            "be that server, running (or use --listen PORT)" + (f"; {hint}" if hint else "")
        )
    headers = _server_headers()
    listing = http.request("GET", f"{base}/v1/apps", headers)
    apps = listing.json.get("data") if listing.status == 200 and isinstance(listing.json, dict) else None
    if not isinstance(apps, list):
        raise TargetError(
            f"{base} is not a Stepline server (GET /v1/apps answered HTTP {listing.status}: {listing.message()})"
        )
    apps = [a for a in apps if isinstance(a, dict) and isinstance(a.get("app_id"), str)]
    match = next((a for a in apps if isinstance(a.get("url"), str) and _same_url(a["url"], url)), None)
    if match is None:
        # Behind a proxy (INNGEST_SERVE_ORIGIN) the app registers another URL: take the app that
        # synced just now.
        recent = [a for a in apps if (_ms(a.get("synced_at")) or 0) >= started_ms - CLOCK_SLACK_MS]
        if len(recent) == 1:
            match = recent[0]
    if match is None:
        raise TargetError(
            f"the app answered the sync, but no app with URL {url} synced at {base}: the app "
            "registers with another server (its INNGEST_DEV / INNGEST_BASE_URL); point "
            "--register-via at that one, or use --listen PORT"
        )
    app_id = match["app_id"]
    reply = http.request("GET", f"{base}/v1/apps/{urllib.parse.quote(app_id, safe='')}/functions", headers)
    data = reply.json.get("data") if reply.status == 200 and isinstance(reply.json, dict) else None
    if not isinstance(data, list):
        raise TargetError(
            f"cannot read app {app_id!r}'s functions from {base} (GET /v1/apps/{{id}}/functions "
            f"answered HTTP {reply.status}: {reply.message()})"
        )
    configs = [
        f["config"]
        for f in data
        if isinstance(f, dict) and isinstance(f.get("config"), dict) and isinstance(f["config"].get("id"), str)
    ]
    sdk = Sdk.from_wire(match.get("sdk") if isinstance(match.get("sdk"), str) else None)
    return view_from_stored(app_id, configs, target=url, serve=serve, introspected_count=count, sdk=sdk)
