"""One SQLite file shared by the local store, queue and timers.

Connections come from a small pool rather than one per thread: the dev server's HTTP side may
start a thread per request, and a connection pinned to each of those would outlive its thread.
A borrowed connection is used by one thread at a time, so WAL readers run side by side while
writers queue on SQLite's own lock (``busy_timeout``).

Durability: WAL with ``synchronous=NORMAL``. A commit appends to the WAL with write(2) before it
returns, so a committed transaction (an acknowledged event included) survives the process being
killed, even with -9. Only an OS crash or power loss can drop the last few transactions, because
the WAL is fsynced at checkpoints rather than at every commit. That trade is fine for a
development server; the production path stores events in DynamoDB.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from stepline.engine.ports import StoreError
from stepline.local.schema import ADDED_COLUMNS, BACKFILLS, SCHEMA, SCHEMA_VERSION

BUSY_TIMEOUT_S = 30.0
# Idle connections kept for reuse; more are opened under load and closed when returned.
POOL_SIZE = 16


def dumps(value: Any) -> str:
    """JSON text for a JSON value. NaN and Infinity are refused: they are not JSON, and another
    backend could not store them either."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def schema_statements(script: str) -> list[str]:
    """``script`` cut into single statements (``sqlite3.complete_statement`` knows about
    comments and string literals, so a ``;`` inside either does not cut)."""
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    rest = "\n".join(ln for ln in buffer.splitlines() if not ln.strip().startswith("--"))
    if rest.strip():
        raise ValueError(f"incomplete SQL statement in schema: {buffer.strip()[:80]!r}")
    return statements


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the file up to ``SCHEMA_VERSION``: a new file gets every table, a file written by
    an earlier version gains what it lacks, and its rows stay as they are.

    One IMMEDIATE transaction with the version read inside it, so two processes opening an old
    file at once cannot both upgrade it (the second waits and then finds it current). Not
    ``executescript``: that commits first, outside any transaction.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
            # Columns before the script: a table an earlier version created is skipped by its
            # CREATE TABLE IF NOT EXISTS, and an index in the script may name a new column.
            for table, column, declaration in ADDED_COLUMNS:
                have = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
                if have and column not in have:
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
            for statement in schema_statements(SCHEMA):
                conn.execute(statement)
            for statement in BACKFILLS:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class Database:
    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._idle: list[sqlite3.Connection] = []
        self._all: set[sqlite3.Connection] = set()
        self._closed = False
        with self.connection() as conn:
            # WAL is a property of the file; setting it once here covers every connection.
            conn.execute("PRAGMA journal_mode=WAL")
            migrate(conn)

    # -- connections -------------------------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        # isolation_level=None: no implicit transactions; single statements autocommit and
        # multi-statement work says BEGIN itself. check_same_thread=False: the pool hands a
        # connection to different threads over time (never to two at once), and close() may run
        # on another thread.
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._closed:
                raise StoreError(f"local store {self.path} is closed")
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self._open()
            with self._lock:
                self._all.add(conn)
        try:
            yield conn
        except sqlite3.OperationalError as exc:
            # Locked past the busy timeout, disk full, I/O error: nothing the caller can fix,
            # and the queue retries the message.
            raise StoreError(f"sqlite: {exc}") from exc
        finally:
            self._give_back(conn)

    def _give_back(self, conn: sqlite3.Connection) -> None:
        try:
            if conn.in_transaction:
                conn.rollback()
        except sqlite3.ProgrammingError:
            return  # closed by close() while borrowed
        with self._lock:
            if not self._closed and len(self._idle) < POOL_SIZE:
                self._idle.append(conn)
                return
            self._all.discard(conn)
        conn.close()

    # -- transactions ------------------------------------------------------------------------
    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that holds the write lock from its first statement, so a
        read-then-write (dedupe, check-then-insert) cannot interleave with another writer."""
        with self.connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every statement inside sees the same committed state."""
        with self.connection() as conn:
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            conns, self._all, self._idle = list(self._all), set(), []
        for conn in conns:
            conn.close()
