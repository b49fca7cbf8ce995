"""Apps and functions on the table: the CATALOG partition, plus one trigger item per
(event name, function) so that matching an event to functions is one Query."""

from __future__ import annotations

from stepline.aws.client import TableClient
from stepline.aws.items import (
    Item,
    app_from_item,
    app_item,
    function_from_json,
    function_item,
    get_json,
    str_attr,
    trigger_item,
)
from stepline.engine.records import AppRecord, FunctionRecord


class AppRecords:
    """The app and function half of ``DynamoStore``."""

    _t: TableClient

    def put_app(self, app: AppRecord, functions: list[FunctionRecord]) -> None:
        existing = {f.fn_id: f for f in self.list_functions()}
        incoming = {f.fn_id: f for f in functions}
        puts: dict[tuple[str, str], Item] = {}

        def put(item: Item) -> None:
            puts[(item["pk"]["S"], item["sk"]["S"])] = item

        put(app_item(app))
        for fn in incoming.values():
            put(function_item(fn))
            for trigger in fn.event_triggers:
                put(trigger_item(trigger, fn))
        deletes: dict[tuple[str, str], Item] = {}
        for old in existing.values():
            if old.fn_id not in incoming and old.app_id != app.app_id:
                continue  # another app's function: not ours to remove
            stale = [("CATALOG", f"FN#{old.fn_id}")] if old.fn_id not in incoming else []
            stale += [(f"TRIGGER#{t}", f"FN#{old.fn_id}") for t in old.event_triggers]
            for pk, sk in stale:
                if (pk, sk) not in puts:
                    deletes[(pk, sk)] = {"pk": str_attr(pk), "sk": str_attr(sk)}
        self._t.batch_write(puts=puts.values(), deletes=deletes.values())

    def get_app(self, app_id: str) -> AppRecord | None:
        item = self._t.get({"pk": str_attr("CATALOG"), "sk": str_attr(f"APP#{app_id}")})
        return app_from_item(item) if item else None

    def delete_app(self, app_id: str) -> None:
        deletes: dict[tuple[str, str], Item] = {}
        for fn in self.list_functions():
            if fn.app_id != app_id:
                continue  # including one of its functions that moved to another app since
            for pk, sk in [("CATALOG", f"FN#{fn.fn_id}")] + [
                (f"TRIGGER#{t}", f"FN#{fn.fn_id}") for t in fn.event_triggers
            ]:
                deletes[(pk, sk)] = {"pk": str_attr(pk), "sk": str_attr(sk)}
        deletes[("CATALOG", f"APP#{app_id}")] = {"pk": str_attr("CATALOG"), "sk": str_attr(f"APP#{app_id}")}
        self._t.batch_write(puts=[], deletes=deletes.values())

    def list_apps(self) -> list[AppRecord]:
        return [app_from_item(i) for i in self._t.query_partition("CATALOG", "APP#")]

    def get_function(self, fn_id: str) -> FunctionRecord | None:
        item = self._t.get({"pk": str_attr("CATALOG"), "sk": str_attr(f"FN#{fn_id}")})
        return function_from_json(get_json(item, "fn")) if item else None

    def list_functions(self) -> list[FunctionRecord]:
        items = self._t.query_partition("CATALOG", "FN#")
        return [function_from_json(get_json(i, "fn")) for i in items]

    def functions_for_event(self, event_name: str) -> list[FunctionRecord]:
        items = self._t.query_partition(f"TRIGGER#{event_name}")
        return [function_from_json(get_json(i, "fn")) for i in items]
