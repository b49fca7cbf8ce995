"""The local ``RunStore``: one SQLite file, one table family per concern."""

from __future__ import annotations

from runtime.local.apps import AppTable
from runtime.local.db import Database
from runtime.local.events import EventTable
from runtime.local.flow import FlowTable
from runtime.local.runs import RunTable
from runtime.local.steps import StepTable
from runtime.local.waiters import WaiterTable


class SqliteRunStore(EventTable, AppTable, RunTable, StepTable, WaiterTable, FlowTable):
    def __init__(self, db: Database) -> None:
        self._db = db
