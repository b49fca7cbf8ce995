"""Runs pinned to the app version they started on (docs/deploy.md, "Runs keep their version").

A durable function replays its code on every call: a deploy that changes the code under a run in
flight can make it take another path half-way. So a run records the version its first call ran
on (``Run.app_version``), and, where the platform can route to a version, its later calls go
there:

* An app invoked by its Lambda ARN (``stepline.engine.app_targets``): the version Lambda reports
  it ran (``ExecutedVersion``; an alias resolves to a number) is recorded, and later calls of the
  run invoke that version, while the alias takes new runs to the newest. ``$LATEST`` is never
  pinned (it is not a version that stays put): register an alias to have runs pinned.
* Any other app (HTTP, function URLs): the ``appVersion`` its app registered is recorded, to be
  seen on the run; calls go to the one URL there is.

A pinned version that is gone (deleted) is not fatal: the call goes to the registered ARN, the
run is pinned again to what that ran, and a warning says so. ``pin_app_versions=false`` (the
stack's ``pinAppVersions``) turns pinning off: every call goes to the registered ARN.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from stepline.engine.app_targets import H_EXECUTED_VERSION, H_PIN_GONE, PIN_PARAM, TargetKind, target_of
from stepline.engine.records import Run
from stepline.protocol.urls import set_query_param

log = logging.getLogger(__name__)

UNPINNABLE = "$LATEST"


def _invoked(url: str) -> bool:
    try:
        return target_of(url).kind is TargetKind.LAMBDA_INVOKE
    except ValueError:
        return False


def call_url(url: str, run: Run, enabled: bool) -> str:
    """Where this call of ``run`` goes: ``url``, aimed at the run's pinned version when it has one."""
    if enabled and run.app_version and run.app_version.isdigit() and _invoked(url):
        return set_query_param(url, PIN_PARAM, run.app_version)
    return url


def observed(
    run: Run, url: str, headers: Mapping[str, str], registered_version: Callable[[], str | None]
) -> str | None:
    """The app version to record on ``run`` after a call to ``url`` answered with ``headers``;
    None when it stays as it is. ``registered_version`` gives the appVersion the app registered
    (asked only while the run has no version yet)."""
    if _invoked(url):
        executed = headers.get(H_EXECUTED_VERSION)
        gone = headers.get(H_PIN_GONE)
        if not executed or executed == UNPINNABLE or executed == run.app_version:
            return None
        if gone is not None:
            log.warning("run %s: pinned version %s is gone; it goes on on version %s", run.run_id, gone, executed)
            return executed
        return executed if run.app_version is None else None
    if run.app_version is None:
        return registered_version() or None
    return None
