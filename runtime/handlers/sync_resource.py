"""The deploy-time sync: a CloudFormation custom resource (``infra/app_function.py``) whose
create and update ask the user's app to sync, so every deploy that changes the app registers its
functions before the deploy completes, and fails the deploy, with the reason, when it cannot.

The resource's ``Target`` is the app's function ARN (an alias) or its function URL; the sync goes
the way calls go (``stepline.engine.sync_request``). The answer is PUT to the pre-signed
``ResponseURL`` CloudFormation gives, as its custom resource contract asks: ``FAILED`` with a
``Reason`` makes the deploy roll back and shows the reason in the stack's events.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from typing import Any

from stepline.engine.core import Engine
from stepline.engine.sync_request import SyncFailed, sync_target

log = logging.getLogger(__name__)

# The app may be cold, or its version just published: a sync gets this many tries, this far apart
# (well inside the custom resource's hour, and the sync Lambda's timeout).
SYNC_ATTEMPTS = 10
SYNC_INTERVAL_S = 3.0
# CloudFormation shows at most this much of a reason.
MAX_REASON_CHARS = 1000


def handler(event: dict[str, Any], context: Any) -> None:
    from stepline.handlers.wiring import engine_from_env

    handle(event, context, engine_from_env)


def handle(event: dict[str, Any], context: Any, engine: Any, *, interval_s: float = SYNC_INTERVAL_S) -> dict:
    """Do what ``event`` asks and answer CloudFormation; returns the answer (tests read it).
    ``engine`` is the engine, or a function that builds it (only creates and updates need one)."""
    props = event.get("ResourceProperties") or {}
    target = props.get("Target")
    physical_id = event.get("PhysicalResourceId") or f"sync:{target}"
    status, reason, data = "SUCCESS", "", {}
    if event.get("RequestType") in ("Create", "Update"):
        try:
            built: Engine = engine() if callable(engine) else engine
            # A deploy is the owner's own act: it may move the app from the origin it had.
            synced = sync_target(built, target, force=True, attempts=SYNC_ATTEMPTS, interval_s=interval_s)
            data = {"AppIds": ",".join(sorted(a.app_id for a in synced.apps)), "Url": synced.url}
            log.info("synced %s: apps %s", synced.url, data["AppIds"])
        except SyncFailed as failed:
            status, reason = "FAILED", f"Stepline could not sync the app: {failed.message}"
        except Exception as exc:  # noqa: BLE001 - any failure must reach CloudFormation, or it waits an hour
            log.exception("deploy-time sync failed")
            status, reason = "FAILED", f"Stepline could not sync the app: {type(exc).__name__}: {exc}"
    answer = {
        "Status": status,
        "Reason": (reason or "see the sync Lambda's log")[:MAX_REASON_CHARS],
        "PhysicalResourceId": physical_id,
        "StackId": event.get("StackId"),
        "RequestId": event.get("RequestId"),
        "LogicalResourceId": event.get("LogicalResourceId"),
        "Data": data,
    }
    _respond(event["ResponseURL"], answer)
    return answer


def _respond(url: str, answer: dict[str, Any]) -> None:
    body = json.dumps(answer).encode()
    # The pre-signed S3 URL is signed for an empty Content-Type.
    request = urllib.request.Request(url, data=body, method="PUT", headers={"Content-Type": ""})
    with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310 - CloudFormation's own URL
        resp.read()
