"""The checks a register payload allows, run by the runtime at every accepted sync.

A failure does not refuse the sync (the app is valid; it is a risk, not an error): each one is
logged as a WARNING on the ``stepline.check`` logger, naming the app, the function and the check,
so it shows in `stepline dev`'s output and in the API Lambda's logs.
"""

from __future__ import annotations

import logging

from stepline.check.payload import view_from_sync
from stepline.check.registry import run_checks
from stepline.protocol.register import AppSync

log = logging.getLogger("stepline.check")


def warn_on_sync(sync: AppSync) -> int:
    """Log each failed check of ``sync``; returns how many were logged. Never raises: a fault in
    a check must not fail a sync the server has already stored."""
    try:
        reports = run_checks(view_from_sync(sync))
    except Exception:  # noqa: BLE001
        log.exception("app %r: running the sync checks failed", sync.app_id)
        return 0
    logged = 0
    for report in reports:
        for result in report.failures:
            subject = f"app {sync.app_id!r}" + (f" function {result.function!r}" if result.function else "")
            log.warning(
                "%s: check %s (%s) failed: %s. Fix: %s",
                subject,
                report.id,
                report.severity.value,
                result.message,
                result.fix,
            )
            logged += 1
    return logged
