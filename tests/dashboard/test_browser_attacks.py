"""A web page in the developer's browser cannot use `stepline dev`: the attacks are run by
chromium itself, from a page on another site (``evil.example``, which chromium resolves to
127.0.0.1 here, as a DNS-rebinding attacker arranges).

* Cross-site request forgery: the page posts an event to 127.0.0.1 with `fetch` in no-cors mode
  (no preflight), with an auto-submitted `text/plain` form whose fields spell JSON, and with a
  JSON `fetch` (which needs a preflight). None is stored.
* DNS rebinding: the browser opens ``http://evil.example:<port>/`` and reaches the server itself;
  every answer is a 403, so the page can read nothing and send nothing.
* The control: the dashboard's own origin loads and posts an event that is stored.
"""

from __future__ import annotations

import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from stepline.dev.runtime import DevOptions, DevRuntime
from stepline.settings import Settings
from tests.dashboard.chromium import FLAGS
from tests.e2e.conftest import free_port, wait_for

ATTACKER_HOST = "evil.example"


def attack_page(target: str, names: dict[str, str]) -> str:
    form_field = f'[{{"name":"{names["form"]}","data":{{"pad":"'
    return f"""<!doctype html><html><body>
<iframe name="sink"></iframe>
<form id="csrf" method="POST" action="{target}/e/dev" enctype="text/plain" target="sink">
  <input name='{form_field}' value='x"}}}}]'>
</form>
<script>
const body = (name) => JSON.stringify([{{name, data: {{}}}}]);
window.results = {{}};
const attempts = [
  fetch("{target}/e/dev", {{method: "POST", mode: "no-cors", body: body("{names["no-cors"]}")}})
    .then(r => window.results.noCors = r.type, e => window.results.noCors = "error " + e),
  fetch("{target}/e/dev", {{method: "POST", headers: {{"Content-Type": "application/json"}},
                               body: body("{names["json"]}")}})
    .then(r => window.results.json = r.status, e => window.results.json = "blocked"),
];
document.getElementById("csrf").submit();
Promise.allSettled(attempts).then(() => {{ window.done = true; }});
</script></body></html>"""


class AttackerSite:
    """A web server for the attacker's page, on another port of this machine."""

    def __init__(self, page: str) -> None:
        html = page.encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - stdlib naming
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(html)))
                self.end_headers()
                self.wfile.write(html)

            def log_message(self, *_args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def dev(tmp_path_factory):
    options = DevOptions(port=free_port(), db_path=str(tmp_path_factory.mktemp("attacks") / "dev.db"))
    runtime = DevRuntime(options, Settings(mode="dev")).start()
    try:
        yield runtime
    finally:
        runtime.stop()


@pytest.fixture(scope="module")
def attacker_browser(playwright, chromium_path, tmp_path_factory):
    # The attacker's name resolves to this machine, as a rebinding DNS server would make it.
    context = playwright.chromium.launch_persistent_context(
        str(tmp_path_factory.mktemp("chromium-attacks")),
        executable_path=chromium_path,
        headless=True,
        args=[*FLAGS, f"--host-resolver-rules=MAP {ATTACKER_HOST} 127.0.0.1"],
    )
    context.set_default_timeout(15_000)
    try:
        yield context
    finally:
        context.close()


def stored(runtime: DevRuntime, name: str) -> int:
    return len(runtime.backend.store.list_events(limit=10, name=name)[0])


def test_a_foreign_page_cannot_post_events_through_the_browser(dev, attacker_browser):
    names = {kind: f"attack/{kind}-{uuid.uuid4().hex[:8]}" for kind in ("no-cors", "form", "json")}
    site = AttackerSite(attack_page(f"http://127.0.0.1:{dev.server.port}", names))
    page = attacker_browser.new_page()
    try:
        page.goto(f"http://{ATTACKER_HOST}:{site.port}/")
        page.wait_for_function("window.done === true")
        # The form posts into the iframe: give its navigation time to reach the server.
        page.wait_for_timeout(500)
        results = page.evaluate("window.results")
    finally:
        page.close()
        site.stop()
    # The no-cors request was sent (its answer is opaque to the page); the JSON one died at its
    # preflight. Either way the server stored nothing.
    assert results["noCors"] == "opaque", results
    assert results["json"] == "blocked", results
    for name in names.values():
        assert stored(dev, name) == 0, name


def test_a_rebound_name_gets_403_for_the_dashboard_and_the_api(dev, attacker_browser):
    page = attacker_browser.new_page()
    try:
        for path in ("/", "/v1/events", "/static/app.js"):
            response = page.goto(f"http://{ATTACKER_HOST}:{dev.server.port}{path}")
            assert response is not None and response.status == 403, path
            assert "host: " in response.text()
    finally:
        page.close()


def test_the_dashboards_own_origin_still_works(dev, attacker_browser):
    name = f"attack/control-{uuid.uuid4().hex[:8]}"
    page = attacker_browser.new_page()
    try:
        response = page.goto(f"http://127.0.0.1:{dev.server.port}/")
        assert response is not None and response.status == 200
        status = page.evaluate(
            """async (name) => (await fetch("/e/dev", {method: "POST", headers: {"Content-Type": "application/json"},
                                                    body: JSON.stringify([{name, data: {}}])})).status""",
            name,
        )
    finally:
        page.close()
    assert status == 200
    wait_for(lambda: stored(dev, name) == 1, 5, what="the dashboard's event to be stored")
