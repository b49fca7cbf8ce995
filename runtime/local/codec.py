"""Rows to records and back. The only place that knows which column holds which field."""

from __future__ import annotations

import sqlite3
from typing import Any

from stepline.engine.records import (
    AppRecord,
    FunctionRecord,
    Memo,
    PendingOp,
    Run,
    RunStatus,
    StoredEvent,
    Waiter,
    WaiterKind,
)
from stepline.local.db import dumps, loads
from stepline.protocol.opcodes import Op


# -- events ------------------------------------------------------------------------------------
def event_row(event: StoredEvent) -> tuple[Any, ...]:
    rest = {"data": event.data, "ts": event.ts, "user": event.user, "v": event.v}
    if event.trace:
        rest["trace"] = event.trace
    return (event.internal_id, event.id, event.name, event.received_at, dumps(rest))


def event_from_row(row: sqlite3.Row) -> StoredEvent:
    rest = loads(row["json"])
    return StoredEvent(
        internal_id=row["internal_id"],
        id=row["id"],
        name=row["name"],
        data=rest["data"],
        ts=rest["ts"],
        received_at=row["received_at"],
        user=rest["user"],
        v=rest["v"],
        trace=rest.get("trace"),
    )


# -- apps and functions ------------------------------------------------------------------------
def app_row(app: AppRecord) -> tuple[Any, ...]:
    return (
        app.app_id,
        app.url,
        app.synced_at,
        app.sdk,
        app.framework,
        app.app_version,
        dumps(app.function_ids),
    )


def app_from_row(row: sqlite3.Row) -> AppRecord:
    return AppRecord(
        app_id=row["app_id"],
        url=row["url"],
        synced_at=row["synced_at"],
        sdk=row["sdk"],
        framework=row["framework"],
        app_version=row["app_version"],
        function_ids=loads(row["function_ids_json"]),
    )


def function_row(fn: FunctionRecord) -> tuple[Any, ...]:
    return (fn.fn_id, fn.app_id, fn.name, fn.url, dumps(fn.config), dumps(fn.event_triggers))


def function_from_row(row: sqlite3.Row) -> FunctionRecord:
    return FunctionRecord(
        fn_id=row["fn_id"],
        app_id=row["app_id"],
        name=row["name"],
        url=row["url"],
        config=loads(row["config_json"]),
        event_triggers=loads(row["event_triggers_json"]),
    )


# -- runs --------------------------------------------------------------------------------------
# Run field -> (column, encoder). Every settable field is listed; run_id is the key.
def _status(value: RunStatus | str) -> str:
    return RunStatus(value).value


def _plain(value: Any) -> Any:
    return value


def _json_or_null(value: Any) -> str | None:
    return None if value is None else dumps(value)


RUN_COLUMNS: dict[str, tuple[str, Any]] = {
    "fn_id": ("fn_id", _plain),
    "app_id": ("app_id", _plain),
    "status": ("status", _status),
    "events": ("events_json", dumps),
    "event_ids": ("event_ids_json", dumps),
    "created_at": ("created_at", _plain),
    "started_at": ("started_at", _plain),
    "ended_at": ("ended_at", _plain),
    "output": ("output_json", dumps),
    "error": ("error_json", dumps),
    "req_version": ("req_version", _plain),
    "lease_owner": ("lease_owner", _plain),
    "lease_until": ("lease_until", _plain),
    "origin": ("origin_json", _json_or_null),
    "wake_at": ("wake_at", _plain),
    "app_version": ("app_version", _plain),
    "trace": ("trace", _plain),
}


# Columns of the runs table that no Run field fills any more, and what a new row holds in each:
# files of earlier versions declare them NOT NULL, without a default. Never read.
RETIRED_RUN_COLUMNS: dict[str, Any] = {
    "disable_immediate": 0,  # immediate execution follows the ops still out (docs/protocol.md §7.3)
}


def run_columns(run: Run) -> dict[str, Any]:
    out: dict[str, Any] = {"run_id": run.run_id, **RETIRED_RUN_COLUMNS}
    for field_name, (column, encode) in RUN_COLUMNS.items():
        out[column] = encode(getattr(run, field_name))
    return out


def run_from_row(row: sqlite3.Row) -> Run:
    return Run(
        run_id=row["run_id"],
        fn_id=row["fn_id"],
        app_id=row["app_id"],
        status=RunStatus(row["status"]),
        events=loads(row["events_json"]),
        event_ids=loads(row["event_ids_json"]),
        created_at=row["created_at"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        output=loads(row["output_json"]),
        error=loads(row["error_json"]),
        req_version=row["req_version"],
        lease_owner=row["lease_owner"],
        lease_until=row["lease_until"],
        origin=loads(row["origin_json"]),
        wake_at=row["wake_at"],
        app_version=row["app_version"],
        trace=row["trace"],
    )


# -- steps -------------------------------------------------------------------------------------
def memo_from_row(row: sqlite3.Row) -> Memo:
    return Memo(
        step_id=row["step_id"],
        value=loads(row["value_json"]),
        seq=row["seq"],
        name=row["name"],
        detail=loads(row["detail_json"]) or {},
    )


def pending_from_row(row: sqlite3.Row) -> PendingOp:
    return PendingOp(
        step_id=row["step_id"],
        op=Op.read(row["op"]),
        created_at=row["created_at"],
        name=row["name"],
        detail=loads(row["detail_json"]),
    )


# -- waiters -----------------------------------------------------------------------------------
def waiter_row(waiter: Waiter) -> tuple[Any, ...]:
    return (
        waiter.event_name,
        waiter.run_id,
        waiter.step_id,
        WaiterKind(waiter.kind).value,
        int(waiter.expires_at),
        int(waiter.created_at),
        waiter.expression,
        dumps(waiter.trigger),
        waiter.match_field,
        waiter.match_key or "",
    )


def waiter_from_row(row: sqlite3.Row) -> Waiter:
    return Waiter(
        event_name=row["event_name"],
        run_id=row["run_id"],
        step_id=row["step_id"],
        kind=WaiterKind(row["kind"]),
        expires_at=row["expires_at"],
        created_at=row["created_at"],
        expression=row["expression"],
        trigger=loads(row["trigger_json"]),
        match_field=row["match_field"],
        match_key=row["match_key"] or None,
    )
