"""The local ``RunStore`` (and ``RunEraser``): one SQLite file, one table family per concern."""

from __future__ import annotations

from stepline.local.apps import AppTable
from stepline.local.db import Database
from stepline.local.erasure import ErasureTable
from stepline.local.events import EventTable
from stepline.local.flow import FlowTable
from stepline.local.runs import RunTable
from stepline.local.steps import StepTable
from stepline.local.waiters import WaiterTable


class SqliteRunStore(EventTable, AppTable, RunTable, StepTable, WaiterTable, FlowTable, ErasureTable):
    def __init__(self, db: Database, *, retention_ms: int | None = None) -> None:
        self._db = db
        # How long ended runs and stored events are kept (None: for ever); see erasure_port.
        self.retention_ms = retention_ms
