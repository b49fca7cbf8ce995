"""The dashboard shows a run waiting for a signal (in Debian's headless chromium): the step's row
names the signal it waits for, and turns Completed once the signal is sent."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import expect

from stepline import serve_wsgi
from tests.sdk.harness import Stack, wait_for
from tests.sdk.test_signals_e2e import APP_ID, client


@pytest.fixture(scope="module")
def signals(tmp_path_factory):
    stack = Stack(serve_wsgi(client), tmp_path_factory.mktemp("dashboard-signals"), APP_ID)
    yield stack
    stack.close()


def test_a_waiting_signal_is_shown_on_the_runs_timeline(signals, page):
    signal = f"approval/{uuid.uuid4().hex[:8]}"
    [event_id] = signals.send({"name": "sdk-signals/wait", "data": {"signal": signal, "key": "dash"}})
    run_id = wait_for(lambda: (signals.runs(event_id) or [{}])[0].get("run_id"), what="the run")
    waits = signals.runtime.backend.signals
    wait_for(lambda: waits.get_signal_wait(signal, signals.clock.now_ms()), what="the run to wait for its signal")

    page.goto(f"{signals.url}/#/runs/{run_id}")

    row = page.locator('.step-row[data-step-name="wait"]')
    expect(row).to_have_attribute("data-kind", "signal")
    expect(row).to_have_attribute("data-status", "Waiting")
    expect(row.locator(".tag.signal")).to_have_text(f"signal {signal}")
    assert client.send_signal(signal, {"approved": True}) == run_id
    expect(row).to_have_attribute("data-status", "Completed", timeout=20_000)
    expect(page.locator(".run-head .badge")).to_have_text("Completed")
