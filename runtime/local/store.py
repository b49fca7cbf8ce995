"""The local ``Store``: every storage port on one SQLite file, one table family (and module) per
port: events, apps, runs and steps (the ``RunStore`` port), waiters, and flow control (flow state,
key claims, slots)."""

from __future__ import annotations

from stepline.local.apps import AppTable
from stepline.local.db import Database
from stepline.local.events import EventTable
from stepline.local.flow import FlowTable
from stepline.local.runs import RunTable
from stepline.local.steps import StepTable
from stepline.local.waiters import WaiterTable


class SqliteStore(EventTable, AppTable, RunTable, StepTable, WaiterTable, FlowTable):
    def __init__(self, db: Database) -> None:
        self._db = db
