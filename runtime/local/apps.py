"""Apps and their functions, with an event-name index for trigger matching."""

from __future__ import annotations

from stepline.engine.records import AppRecord, FunctionRecord
from stepline.local.codec import app_from_row, app_row, function_from_row, function_row
from stepline.local.db import Database


class AppTable:
    _db: Database

    def put_app(self, app: AppRecord, functions: list[FunctionRecord]) -> None:
        # One transaction: a sync never leaves a half-registered app for ingest to match.
        with self._db.write() as conn:
            conn.execute("INSERT OR REPLACE INTO apps VALUES (?, ?, ?, ?, ?, ?, ?)", app_row(app))
            conn.execute(
                "DELETE FROM function_triggers WHERE fn_id IN (SELECT fn_id FROM functions WHERE app_id = ?)",
                (app.app_id,),
            )
            conn.execute("DELETE FROM functions WHERE app_id = ?", (app.app_id,))
            # A function that moved here from another app takes its triggers with it.
            conn.executemany("DELETE FROM function_triggers WHERE fn_id = ?", [(fn.fn_id,) for fn in functions])
            conn.executemany(
                "INSERT OR REPLACE INTO functions VALUES (?, ?, ?, ?, ?, ?)",
                [function_row(fn) for fn in functions],
            )
            conn.executemany(
                "INSERT OR IGNORE INTO function_triggers (event_name, fn_id) VALUES (?, ?)",
                [(name, fn.fn_id) for fn in functions for name in fn.event_triggers],
            )

    def get_app(self, app_id: str) -> AppRecord | None:
        with self._db.connection() as conn:
            row = conn.execute("SELECT * FROM apps WHERE app_id = ?", (app_id,)).fetchone()
        return app_from_row(row) if row else None

    def delete_app(self, app_id: str) -> None:
        with self._db.write() as conn:
            conn.execute(
                "DELETE FROM function_triggers WHERE fn_id IN (SELECT fn_id FROM functions WHERE app_id = ?)",
                (app_id,),
            )
            conn.execute("DELETE FROM functions WHERE app_id = ?", (app_id,))
            conn.execute("DELETE FROM apps WHERE app_id = ?", (app_id,))

    def list_apps(self) -> list[AppRecord]:
        with self._db.connection() as conn:
            rows = conn.execute("SELECT * FROM apps ORDER BY app_id").fetchall()
        return [app_from_row(r) for r in rows]

    def get_function(self, fn_id: str) -> FunctionRecord | None:
        with self._db.connection() as conn:
            row = conn.execute("SELECT * FROM functions WHERE fn_id = ?", (fn_id,)).fetchone()
        return function_from_row(row) if row else None

    def list_functions(self) -> list[FunctionRecord]:
        with self._db.connection() as conn:
            rows = conn.execute("SELECT * FROM functions ORDER BY fn_id").fetchall()
        return [function_from_row(r) for r in rows]

    def functions_for_event(self, event_name: str) -> list[FunctionRecord]:
        with self._db.connection() as conn:
            rows = conn.execute(
                "SELECT f.* FROM function_triggers t JOIN functions f ON f.fn_id = t.fn_id "
                "WHERE t.event_name = ? ORDER BY f.fn_id",
                (event_name,),
            ).fetchall()
        return [function_from_row(r) for r in rows]
