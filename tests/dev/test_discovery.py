"""How `stepline dev` finds apps and keeps them synced (stepline.dev.discovery), against a live
runtime and apps on the official SDK in their own processes: an app on a usual port and path is
found, an app that restarted with new code is registered anew, an app that moved does not leave a
stale copy behind (neither an old process still up, nor the registration of its old name).

The watcher is driven poll by poll (``AppWatcher.poll`` with a made-up clock), so each step is
one sync, and the ports it looks at are free ones picked here, never the machine's 3000 or 8000.
"""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from stepline.cli import build_parser
from stepline.dev.discovery import DISCOVERY_PORTS, POLL_INTERVAL_S, AppWatcher, discovery_urls
from stepline.dev.runtime import DevOptions, DevRuntime
from stepline.protocol.urls import same_serve_url
from stepline.settings import Settings
from tests.e2e.conftest import Stepline, free_port, wait_for

APP = Path(__file__).parent / "named_app.py"


class NamedApp:
    """tests/dev/named_app.py in a subprocess."""

    def __init__(self, stepline_url: str, port: int, app_id: str, functions: list[str], path: str = "/api/inngest"):
        self.port = port
        self.url = f"http://127.0.0.1:{port}{path}"
        args = [sys.executable, str(APP), "--port", str(port), "--app-id", app_id, "--path", path]
        for name in functions:
            args += ["--function", name]
        self.proc = subprocess.Popen(
            args, env={"INNGEST_DEV": stepline_url, "PATH": "/usr/bin:/bin"},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for(self._up, what=f"the app at {self.url}")

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"the app at {self.url} exited with {self.proc.returncode}")
        try:
            with urllib.request.urlopen(self.url, timeout=1):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def stepline(tmp_path):
    # No app_urls and no discovery: the runtime's own watcher does nothing; the tests drive theirs.
    runtime = DevRuntime(DevOptions(port=free_port(), db_path=str(tmp_path / "dev.db")), Settings(mode="dev")).start()
    apps: list[NamedApp] = []
    stack = Stepline(runtime)
    stack.apps = apps  # type: ignore[attr-defined]
    try:
        yield stack
    finally:
        for app in apps:
            app.stop()
        runtime.stop()


def start(stepline, port: int, app_id: str, functions: list[str], path: str = "/api/inngest") -> NamedApp:
    app = NamedApp(stepline.url, port, app_id, functions, path)
    stepline.apps.append(app)
    return app


def registered(stepline) -> dict[str, tuple[str, list[str]]]:
    """app id -> (the URL it is registered from, its function ids)."""
    store = stepline.runtime.backend.store
    return {a.app_id: (a.url, sorted(a.function_ids)) for a in store.list_apps()}


def answer(stepline, event: str) -> list[dict]:
    [event_id] = stepline.send({"name": event, "data": {}})
    return [r["output"] for r in stepline.wait_runs_done(event_id)]


def test_an_app_on_a_usual_port_is_found_and_resynced_after_it_restarts_with_new_code(stepline):
    port = free_port()
    watcher = AppWatcher(stepline.runtime.backend.store, [], discover=True, discovery_ports=(port,))
    app = start(stepline, port, "shop", ["greet"], path="/x/inngest")

    watcher.poll(100.0)
    assert registered(stepline) == {"shop": (f"http://127.0.0.1:{port}/x/inngest", ["shop-greet"])}
    assert answer(stepline, "named/greet") == [{"app": "shop", "port": port}]

    app.stop()
    watcher.poll(200.0)  # nothing answers: the registration stays as it was
    assert registered(stepline)["shop"][1] == ["shop-greet"]
    start(stepline, port, "shop", ["greet", "wave"], path="/x/inngest")
    watcher.poll(300.0)
    assert registered(stepline)["shop"][1] == ["shop-greet", "shop-wave"]
    assert answer(stepline, "named/wave") == [{"app": "shop", "port": port}]


def test_an_app_that_moved_leaves_no_stale_copy_behind(stepline):
    old_port, new_port = free_port(), free_port()
    watcher = AppWatcher(stepline.runtime.backend.store, [], discover=True, discovery_ports=(old_port, new_port))
    start(stepline, old_port, "shop", ["greet"])
    watcher.poll(100.0)
    assert registered(stepline) == {"shop": (f"http://127.0.0.1:{old_port}/api/inngest", ["shop-greet"])}

    # Moved to another port, the old process still up: the newer copy takes the registration and
    # keeps it, poll after poll; the old one is no longer asked to sync.
    start(stepline, new_port, "shop", ["greet"])
    for at in (200.0, 300.0, 400.0):
        watcher.poll(at)
        assert registered(stepline) == {"shop": (f"http://127.0.0.1:{new_port}/api/inngest", ["shop-greet"])}
    old = next(w for w in watcher.watched if w.url == f"http://127.0.0.1:{old_port}/api/inngest")
    assert old.superseded_by == f"http://127.0.0.1:{new_port}/api/inngest"
    assert answer(stepline, "named/greet") == [{"app": "shop", "port": new_port}]

    # Renamed where it runs: the old name's registration goes, so an event runs once, on the
    # code that answers there now.
    for app in stepline.apps:
        app.stop()
    start(stepline, new_port, "shop-renamed", ["greet"])
    watcher.poll(500.0)
    assert registered(stepline) == {
        "shop-renamed": (f"http://127.0.0.1:{new_port}/api/inngest", ["shop-renamed-greet"])
    }
    assert answer(stepline, "named/greet") == [{"app": "shop-renamed", "port": new_port}]


def test_urls_given_with_u_are_watched_beside_the_usual_ones_unless_discovery_is_off(stepline):
    mine = "http://127.0.0.1:4321/api/inngest"
    store = stepline.runtime.backend.store
    on = AppWatcher(store, [mine], discover=True)
    assert [w.url for w in on.watched] == [mine, *discovery_urls()]
    assert {w.url for w in on.watched if not w.explicit} == {
        f"http://127.0.0.1:{p}{path}" for p in (3000, 3001, 5000, 8000, 8080) for path in ("/api/inngest", "/x/inngest")
    }
    off = AppWatcher(store, [mine], discover=False)
    assert [w.url for w in off.watched] == [mine]
    # The command: discovery and polling on unless told otherwise.
    args = build_parser().parse_args(["dev"])
    assert args.no_discovery is False and args.poll_interval == POLL_INTERVAL_S == 5.0
    args = build_parser().parse_args(["dev", "--no-discovery", "-u", mine, "-u", "http://x/y", "--poll-interval", "2"])
    assert args.no_discovery is True and args.url == [mine, "http://x/y"] and args.poll_interval == 2.0
    assert DISCOVERY_PORTS == (3000, 3001, 5000, 8000, 8080)


def test_a_u_url_is_synced_once_it_answers_without_polling(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}/api/inngest"
    options = DevOptions(port=free_port(), db_path=str(tmp_path / "once.db"), app_urls=[url])
    runtime = DevRuntime(options, Settings(mode="dev")).start()
    try:
        app = NamedApp(runtime.url, port, "late", ["greet"])
        try:
            wait_for(lambda: runtime.backend.store.get_app("late"), what="the app to sync once it answers")
        finally:
            app.stop()
    finally:
        runtime.stop()


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("http://127.0.0.1:3000/api/inngest", "http://localhost:3000/api/inngest/", True),
        ("http://127.0.0.1:3000/api/inngest?fnId=x&stepId=step", "http://127.0.0.1:3000/api/inngest", True),
        ("http://127.0.0.1:3000/api/inngest", "http://127.0.0.1:3001/api/inngest", False),
        ("http://127.0.0.1:3000/api/inngest", "http://127.0.0.1:3000/x/inngest", False),
        ("https://shop.example/api/inngest", "https://shop.example:443/api/inngest", True),
        ("https://shop.example/api/inngest", "https://billing.example/api/inngest", False),
    ],
)
def test_same_serve_url(a, b, same):
    assert same_serve_url(a, b) is same
