"""The dashboard in a real browser (Debian's headless chromium, driven by Playwright) against a
live `stepline dev` with an app on the official SDK: a run started from the page is watched to
completion and its timeline shows every step; cancel, replay and rerun work from the page; the
lists filter; deployed, the page asks for the operator key and refuses the apps' signing key."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from stepline.dev.runtime import DevOptions, DevRuntime
from stepline.settings import Settings
from tests.e2e.conftest import free_port
from tests.operating.harness import key

RUN_URL = re.compile(r"#/runs/([0-9A-Z]{26})$")
SIGNING_KEY = "signkey-prod-a1b2c3d4e5f60718293a4b5c6d7e8f90"
OPERATOR_KEY = "0f1e2d3c4b5a6978" * 4


def run_id_of(page) -> str:
    match = RUN_URL.search(page.url)
    assert match, page.url
    return match.group(1)


def steps(page) -> list[dict[str, str]]:
    return page.locator(".step-row").evaluate_all(
        "rows => rows.map(r => ({name: r.dataset.stepName, kind: r.dataset.kind, status: r.dataset.status,"
        " tags: [...r.querySelectorAll('.tag')].map(t => t.textContent)}))"
    )


def test_a_run_started_from_the_page_is_watched_to_completion(ops, page, tmp_path):
    k = key()
    page.goto(f"{ops.url}/")
    expect(page.locator("#mode")).to_contain_text("dev mode")
    expect(page.locator("#runs-table")).to_be_visible()

    page.click("#send-open")
    page.fill("#send-name", "ops/order.placed")
    page.fill("#send-data", json.dumps({"key": k}))
    page.click("#send-submit")
    started = page.locator("#sent-runs a").first
    expect(started).to_contain_text("ops-app-pipeline")
    started.click()
    expect(page).to_have_url(RUN_URL)
    run_id = run_id_of(page)
    expect(page.locator("#run-id")).to_have_text(run_id)

    # Live: the page polls until the run is done, adding steps as they report.
    status = page.locator(".run-head .badge")
    expect(status).to_have_text("Completed", timeout=30_000)
    shown = steps(page)
    api = ops.run(run_id)
    assert [s["name"] for s in shown] == [s["name"] for s in api["steps"]]
    kinds = {s["name"]: s["kind"] for s in shown}
    assert kinds == {"load-order": "run", "check-stock": "run", "check-fraud": "run",
                     "cool-down": "sleep", "charge": "run", "wait-receipt": "wait"}
    assert all(s["status"] == "Completed" for s in shown)
    tags = {s["name"]: s["tags"] for s in shown}
    assert "parallel" in tags["check-stock"] and "parallel" in tags["check-fraud"]
    assert "parallel" not in tags["load-order"]
    assert "2 attempts" in tags["charge"]  # the retry
    assert "timed out" in tags["wait-receipt"]
    assert page.locator(".step-row .bar:visible").count() == 6  # one bar per step on the time axis

    # Each step opens to its input and output.
    page.click('.step-row[data-step-name="charge"]')
    detail = page.locator('.step-detail[data-step-name="charge"]')
    expect(detail).to_contain_text('"charged": 2400')
    expect(detail).to_contain_text("Attempts")
    page.click('.step-row[data-step-name="cool-down"]')
    expect(page.locator('.step-detail[data-step-name="cool-down"]')).to_contain_text("wake_at")
    expect(page.locator("#run-output")).to_contain_text('"charged"')
    page.screenshot(path=str(tmp_path / "run.png"), full_page=True)


def test_cancel_from_the_page(ops, page):
    run_id = ops.run_of(ops.send("ops/slow", {"key": key()}))["run_id"]
    page.goto(f"{ops.url}/#/runs/{run_id}")
    nap = page.locator('.step-row[data-step-name="long-nap"]')
    expect(nap).to_have_attribute("data-status", "Sleeping")
    expect(page.locator(".run-head .badge")).to_have_text("Running")

    page.click("#cancel-run")
    page.click("#confirm-cancel")
    expect(page.locator(".run-head .badge")).to_have_text("Cancelled")
    expect(nap).to_have_attribute("data-status", "Cancelled")
    expect(page.locator("#cancel-run")).to_have_count(0)
    assert ops.run(run_id)["status"] == "Cancelled"


def test_replay_and_rerun_from_the_page(ops, page):
    k = key()
    original = ops.wait_done(ops.run_of(ops.send("ops/steps", {"key": k}))["run_id"])["run_id"]
    page.goto(f"{ops.url}/#/runs/{original}")
    expect(page.locator(".run-head .badge")).to_have_text("Completed")

    page.click("#replay-run")
    expect(page).not_to_have_url(re.compile(original))
    replay = run_id_of(page)
    expect(page.locator("#origin-link")).to_have_text(original)
    expect(page.locator(".run-head .badge")).to_have_text("Completed")
    assert ops.run(replay)["origin"] == {"kind": "replay", "run_id": original}

    page.goto(f"{ops.url}/#/runs/{original}")
    page.click('.step-row[data-step-name="two"]')
    page.click('.step-detail[data-step-name="two"] button.rerun')
    expect(page).not_to_have_url(re.compile(original))
    expect(page.locator(".run-head .badge")).to_have_text("Completed")
    rerun = run_id_of(page)
    assert rerun != replay
    expect(page.locator(".facts")).to_contain_text("Rerun from “two” of")
    shown = steps(page)
    assert [s["name"] for s in shown] == ["one", "two", "three"]
    assert "memoized" in shown[0]["tags"] and "memoized" not in shown[1]["tags"]
    # one: original only (then copied); two and three: original, replay, rerun.
    assert [ops.app.count("steps", s, k) for s in ("one", "two", "three")] == [2, 3, 3]


def test_runs_events_and_functions_pages(ops, page):
    k = key()
    failed = ops.wait_done(ops.run_of(ops.send("ops/steps", {"key": k, "fail_at": "three"}))["run_id"])
    assert failed["status"] == "Failed"

    page.goto(f"{ops.url}/#/runs")
    row = page.locator(f'tr.run-row[data-run-id="{failed["run_id"]}"]')
    expect(row).to_contain_text("Failed")
    page.select_option("#filter-status", "Failed")
    expect(page).to_have_url(re.compile(r"status=Failed"))
    # The filtered page replaces the list once the API answers.
    expect(page.locator('tr.run-row:not([data-status="Failed"])')).to_have_count(0)
    expect(row).to_be_visible()
    page.fill("#filter-search", failed["run_id"])
    expect(page.locator("tr.run-row")).to_have_count(1)
    page.select_option("#filter-status", "Running")
    expect(page.locator("tr.run-row")).to_have_count(0)

    # Events, with the runs they started.
    page.goto(f"{ops.url}/#/events?event={failed['event_id']}")
    focus = page.locator(f'table.focus tr.event-row[data-event-id="{failed["event_id"]}"], '
                         f'#events-table tr.event-row[data-event-id="{failed["event_id"]}"]').first
    expect(focus.locator(".event-runs")).to_contain_text("ops-app-steps")
    expect(focus.locator(".event-runs .badge")).to_have_text("Failed")

    # Functions with their flow control.
    page.goto(f"{ops.url}/#/functions")
    pipeline = page.locator('tr.function-row[data-function-id="ops-app-pipeline"]')
    expect(pipeline).to_contain_text("concurrency 5 at once per event.data.key")
    expect(pipeline).to_contain_text("throttle 100 starts / 1m")
    expect(page.locator('tr.function-row[data-function-id="ops-app-slow"]')).to_contain_text("cancel on ops/slow.cancel")
    expect(page.locator('article.app[data-app-id="ops-app"]')).to_contain_text("synced")


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    settings = Settings(mode="cloud", event_keys=["evt"], signing_key=SIGNING_KEY, operator_key=OPERATOR_KEY)
    options = DevOptions(port=free_port(), db_path=str(tmp_path_factory.mktemp("cloud-page") / "db"))
    runtime = DevRuntime(options, settings).start()
    yield runtime.url
    runtime.stop()


def test_deployed_the_page_asks_for_the_operator_key(cloud, page):
    page.goto(f"{cloud}/")
    dialog = page.locator("#key-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#mode")).to_contain_text("deployed")

    page.fill("#key-input", "00ff")
    page.click("#key-submit")
    expect(page.locator("#key-error")).to_have_text("That key was refused.")

    # The apps' signing key is a real key, but not one that may steer runs.
    page.fill("#key-input", SIGNING_KEY)
    page.click("#key-submit")
    expect(page.locator("#key-error")).to_contain_text("needs the operator key")
    expect(dialog).to_be_visible()

    page.fill("#key-input", OPERATOR_KEY)
    page.click("#key-submit")
    expect(dialog).to_be_hidden()
    expect(page.locator("#runs-table")).to_be_visible()
    expect(page.locator("#view")).to_contain_text("No runs yet")
    # What the page kept is the key's hash, the bearer the SDKs send, never the key.
    stored = page.evaluate("sessionStorage.getItem('stepline.bearer')")
    assert stored and OPERATOR_KEY not in stored and len(stored) == 64


def test_events_hide_stepline_internal_events_until_asked(ops, page):
    k = key()
    run = ops.wait_done(ops.run_of(ops.send("ops/steps", {"key": k}))["run_id"])
    assert run["status"] == "Completed"  # which sends inngest/function.finished
    page.goto(f"{ops.url}/#/events")
    expect(page.locator(f'tr.event-row[data-event-id="{run["event_id"]}"]')).to_be_visible()
    names = page.locator("#events-table tr.event-row").evaluate_all("rows => rows.map(r => r.dataset.name)")
    assert names and not [n for n in names if n.startswith("inngest/")]
    expect(page.locator("#internal-hidden")).to_contain_text("internal inngest/")

    page.check("#show-internal")
    expect(page).to_have_url(re.compile(r"internal=1"))
    expect(page.locator('#events-table tr.event-row[data-name="inngest/function.finished"]').first).to_be_visible()
    page.uncheck("#show-internal")
    expect(page.locator('#events-table tr.event-row[data-name^="inngest/"]')).to_have_count(0)


def test_a_function_is_invoked_from_its_page_with_a_json_payload(ops, page):
    k = key()
    page.goto(f"{ops.url}/#/functions")
    page.click('tr.function-row[data-function-id="ops-app-steps"] .invoke-open')
    form = page.locator('tr.invoke-row[data-function-id="ops-app-steps"]')
    form.locator("textarea").fill("[1, 2]")
    form.locator(".invoke-submit").click()
    expect(form.locator(".invoke-error")).to_have_text("Data: expected a JSON object")

    form.locator("textarea").fill(json.dumps({"key": k}))
    form.locator(".invoke-submit").click()
    expect(page).to_have_url(RUN_URL)
    expect(page.locator(".run-head .badge")).to_have_text("Completed", timeout=30_000)
    run = ops.run(run_id_of(page))
    assert run["function_id"] == "ops-app-steps" and run["events"][0]["name"] == "inngest/function.invoked"
    assert [ops.app.count("steps", s, k) for s in ("one", "two", "three")] == [1, 1, 1]


def test_a_retried_step_shows_each_attempt_with_its_error_and_duration(ops, page):
    run_id = ops.run_of(ops.send("ops/order.placed", {"key": key()}))["run_id"]
    ops.wait_done(run_id)
    page.goto(f"{ops.url}/#/runs/{run_id}?step=")
    page.click('.step-row[data-step-name="charge"]')
    attempts = page.locator('.step-detail[data-step-name="charge"] .attempts li')
    expect(attempts).to_have_count(2)
    expect(attempts.nth(0)).to_have_class(re.compile("failed"))
    expect(attempts.nth(0)).to_contain_text("#1 failed after")
    expect(attempts.nth(0)).to_contain_text("RuntimeError: card network timeout")
    expect(attempts.nth(1)).to_have_class(re.compile("ok"))
    expect(attempts.nth(1)).to_contain_text("#2 succeeded after")


def test_a_rerun_shows_memoized_steps_beside_the_axis_and_every_bar_on_it(ops, page):
    original = ops.wait_done(ops.run_of(ops.send("ops/steps", {"key": key()}))["run_id"])["run_id"]
    three = next(s for s in ops.run(original)["steps"] if s["name"] == "three")
    from tests.e2e.conftest import http

    code, reply = http("POST", f"{ops.url}/v1/runs/{original}/rerun", {"step_id": three["step_id"]})
    assert code == 200
    rerun = ops.wait_done(reply["data"]["run_id"])["run_id"]
    page.goto(f"{ops.url}/#/runs/{rerun}")
    expect(page.locator(".run-head .badge")).to_have_text("Completed")
    for name in ("one", "two"):
        expect(page.locator(f'.step-row[data-step-name="{name}"] .memo-note')).to_contain_text("memoized · first ran")
    expect(page.locator('.step-row[data-step-name="three"] .bar')).to_be_visible()
    outside = page.locator(".step-track").evaluate_all(
        """tracks => tracks.flatMap(t => [...t.querySelectorAll('.bar')].filter(b => !b.hidden).map(b => {
             const r = b.getBoundingClientRect(), a = t.getBoundingClientRect();
             return r.left < a.left - 0.5 || r.right > a.right + 0.5 ? b.title : null;
           })).filter(Boolean)"""
    )
    assert outside == []


def test_the_first_load_shows_the_data_of_the_first_request(ops, browser):
    # A fresh page, not a hash change: what the first request brings is on the page, without
    # waiting for the next poll (the functions page polls every 10 s).
    page = browser.new_page()
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    try:
        page.goto(f"{ops.url}/#/functions")
        expect(page.locator('tr.function-row[data-function-id="ops-app-steps"]')).to_be_visible(timeout=5_000)
        assert len([u for u in asked if u.endswith("/v1/functions")]) == 1
    finally:
        page.close()
