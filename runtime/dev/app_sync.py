"""`stepline dev -u URL`: ask each app to sync itself (PUT), retrying while it starts up."""

from __future__ import annotations

import logging
import threading

import urllib3

log = logging.getLogger(__name__)


def sync_app(url: str, *, attempts: int = 60, interval_s: float = 1.0, stop: threading.Event | None = None) -> bool:
    """PUT the app URL until it answers 2xx. The SDK then POSTs its config to /fn/register.

    No X-Inngest-Server-Kind header: the SDK would reject a PUT whose kind differs from its own
    mode, and leaving it out is always accepted (docs/protocol.md §2.3).
    """
    http = urllib3.PoolManager(retries=False)
    stop = stop or threading.Event()
    for attempt in range(attempts):
        try:
            resp = http.request("PUT", url, body=b"", timeout=urllib3.Timeout(connect=2, read=30))
            if 200 <= resp.status < 300:
                log.info("synced app %s", url)
                return True
            log.warning("sync of %s answered %s: %s", url, resp.status, resp.data[:300])
        except urllib3.exceptions.HTTPError as exc:
            if attempt == 0:
                log.info("waiting for app %s (%s)", url, type(exc).__name__)
        if stop.wait(interval_s):
            break
    log.error("could not sync app %s", url)
    return False


def sync_in_background(urls: list[str], stop: threading.Event) -> list[threading.Thread]:
    threads = []
    for url in urls:
        t = threading.Thread(target=sync_app, args=(url,), kwargs={"stop": stop}, name=f"sync-{url}", daemon=True)
        t.start()
        threads.append(t)
    return threads
