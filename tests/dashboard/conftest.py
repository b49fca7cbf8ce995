"""A live `stepline dev` with the ops app, and a headless Debian chromium driven by Playwright."""

from __future__ import annotations

import pytest

from tests.dashboard.chromium import FLAGS, ChromiumMissing, ensure
from tests.operating.harness import start_ops, stop_ops


@pytest.fixture(scope="session")
def ops(tmp_path_factory):
    stack = start_ops(tmp_path_factory.mktemp("dashboard"))
    try:
        yield stack
    finally:
        stop_ops(stack)


_missing: list[ChromiumMissing] = []


def pytest_collection_finish(session):
    # Install chromium before the first test rather than inside one, where a fresh machine's
    # apt-get would count against the test timeout. A failure is reported by the fixture.
    if any("chromium_path" in getattr(item, "fixturenames", ()) for item in session.items):
        try:
            ensure()
        except ChromiumMissing as exc:
            _missing.append(exc)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    problem = _missing[0] if _missing else None
    if problem is None:
        try:
            return ensure()
        except ChromiumMissing as exc:
            problem = exc
    pytest.fail(f"the dashboard tests need Debian's chromium: {problem}", pytrace=False)


# Module scope, not session: Playwright's sync API runs an asyncio loop in this thread while it
# is started, and tests collected after these ones call asyncio.run().
@pytest.fixture(scope="module")
def playwright():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the dashboard tests need the `playwright` package: pip install -e '.[test]'", pytrace=False)
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright, chromium_path, tmp_path_factory):
    context = playwright.chromium.launch_persistent_context(
        str(tmp_path_factory.mktemp("chromium-profile")),  # a fresh --user-data-dir
        executable_path=chromium_path,
        headless=True,
        args=FLAGS,
        viewport={"width": 1280, "height": 900},
    )
    context.set_default_timeout(15_000)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def page(browser, request):
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # Refused requests (a 401 before the key is given, a 404 looked up on purpose) log a
    # "Failed to load resource" line; anything else at error level is the page's own fault.
    page.on("console", lambda msg: errors.append(msg.text)
            if msg.type == "error" and not msg.text.startswith("Failed to load resource") else None)
    yield page
    page.close()
    # A script error is a failure even when the page looked right.
    assert not errors, f"the page logged errors: {errors}"
