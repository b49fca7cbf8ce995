"""`stepline dev -u URL`: ask each app to sync itself at start, in the background, while the
server comes up (the asking is the engine's: ``stepline.engine.sync.sync_app``)."""

from __future__ import annotations

import threading

from stepline.engine.outbound import redact_url
from stepline.engine.sync import sync_app
from stepline.settings import Settings


def sync_in_background(urls: list[str], settings: Settings, stop: threading.Event) -> list[threading.Thread]:
    threads = []
    for url in urls:
        t = threading.Thread(
            target=sync_app, args=(url, settings), kwargs={"stop": stop}, name=f"sync-{redact_url(url)}", daemon=True
        )
        t.start()
        threads.append(t)
    return threads
