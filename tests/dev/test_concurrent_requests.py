"""Requests served at once by `stepline dev`'s threads never see each other: each gets the answer
to its own path and is judged by its own headers. (Powertools' resolver keeps the request it
serves on its class; the server hands it one request at a time.)"""

from __future__ import annotations

import sys
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator

import pytest

from stepline.api.app import build_api
from stepline.dev.http_server import DevHttpServer
from stepline.dev.runtime import DevOptions, DevRuntime
from stepline.settings import Settings
from tests.e2e.conftest import free_port

STATIC = ["api.js", "app.js", "dom.js", "events.js", "functions.js", "run.js", "runs.js", "send.js"]
THREADS = 8
REQUESTS = 40


@pytest.fixture(params=["a resolver per thread", "one resolver for every thread"])
def url(request, tmp_path) -> Iterator[str]:
    """`stepline dev` as it serves (a resolver per thread), and the API's resolver alone shared by
    every thread of a server (as a test standing in for API Gateway serves the API Lambda)."""
    # The server runs in this process: switching threads every few microseconds, not every 5 ms,
    # makes requests interleave inside the resolver the way a loaded machine does.
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    runtime = DevRuntime(DevOptions(port=free_port(), db_path=str(tmp_path / "dev.db")), Settings(mode="dev")).start()
    shared = None
    try:
        if request.param == "one resolver for every thread":
            shared = DevHttpServer(build_api(runtime.engine), "127.0.0.1", free_port())
            shared.start()
            yield f"http://127.0.0.1:{shared.port}"
        else:
            yield runtime.url
    finally:
        if shared is not None:
            shared.stop()
        runtime.stop()
        sys.setswitchinterval(before)


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_requests_at_once_each_get_their_own_answer(url):
    wrong: list[str] = []
    start = threading.Barrier(THREADS)

    def client(n: int) -> None:
        try:
            ask(n)
        except Exception as exc:  # noqa: BLE001 - a client that dies is a failure too
            wrong.append(f"client {n}: {exc!r}")

    def ask(n: int) -> None:
        start.wait()
        for i in range(REQUESTS):
            if (n + i) % 2:
                name = STATIC[(n + i) % len(STATIC)]
                status, _ = get(f"{url}/static/{name}")
                if status != 200:
                    wrong.append(f"/static/{name}: {status}")
            else:
                run_id = uuid.uuid4().hex
                status, body = get(f"{url}/v1/runs/{run_id}")
                if status != 404 or run_id not in body:
                    wrong.append(f"/v1/runs/{run_id}: {status} {body}")

    threads = [threading.Thread(target=client, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert wrong == []
