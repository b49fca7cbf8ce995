"""The local ``Store``: every storage port on one SQLite file, one table family (and module) per
port: events, apps, runs and steps (the ``RunStore`` port), waiters, signal waits, flow control (flow state,
key claims, slots), and erasure with expiry (``RunEraser``)."""

from __future__ import annotations

from stepline.local.apps import AppTable
from stepline.local.db import Database
from stepline.local.erasure import ErasureTable
from stepline.local.events import EventTable
from stepline.local.flow import FlowTable
from stepline.local.runs import RunTable
from stepline.local.signals import SignalTable
from stepline.local.steps import StepTable
from stepline.local.waiters import WaiterTable


class SqliteStore(EventTable, AppTable, RunTable, StepTable, WaiterTable, SignalTable, FlowTable, ErasureTable):
    def __init__(self, db: Database, *, retention_ms: int | None = None) -> None:
        self._db = db
        # How long ended runs and stored events are kept (None: for ever); see stores.RunEraser.
        self.retention_ms = retention_ms
