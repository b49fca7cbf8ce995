"""The dashboard's files as the API serves them: known files only, with a policy that lets the
page run nothing but its own scripts."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest


def fetch(url: str) -> tuple[int, dict, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def test_the_page_loads_its_modules_under_a_strict_policy(ops):
    code, headers, body = fetch(f"{ops.url}/")
    assert code == 200
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert headers["Cache-Control"] == "no-cache"
    assert b'<script type="module" src="/static/app.js">' in body
    for name in ("app.js", "api.js", "dom.js", "runs.js", "run.js", "events.js", "functions.js", "send.js",
                 "style.css", "favicon.svg"):
        assert fetch(f"{ops.url}/static/{name}")[0] == 200, name


@pytest.mark.parametrize("name", ["nope.js", "dashboard.py", "..%2Fdashboard.py", ".hidden.js", "index"])
def test_anything_else_is_not_found(ops, name):
    code, _, body = fetch(f"{ops.url}/static/{name}")
    assert code == 404, body
