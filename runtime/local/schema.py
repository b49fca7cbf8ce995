"""Tables of the local backend. JSON-valued fields are JSON text columns (suffix ``_json`` or
``json``); everything the adapter filters or orders by is a real column with an index.

Upgrades: every statement is ``IF NOT EXISTS``, so running ``SCHEMA`` on a file of any earlier
version creates what that file lacks. Columns added to an existing table cannot be written that
way; they are listed in ``ADDED_COLUMNS`` and added by ``db.migrate`` when missing.

Versions: 1 the first cut; 2 waiters, pending-op claims, cron schedules, runs by function;
3 flow control (versioned flow state, key claims, concurrency slots and their line);
4 step details on memos (``memos.detail_json``) and where a replayed run came from
(``runs.origin_json``); 5 poison messages kept until redriven (``dead_letters``); 6 when each
live run should next move on (``runs.wake_at``, indexed for the sweeper; live runs of earlier
files get their creation time, so they are swept too); 7 retention and erasure: when an ended
run and a stored event expire (``runs.expires_at``, ``events.expires_at``, NULL when kept for
ever), each indexed, and waiters by run; 8 waiters keyed by the equality their
expression states (``waiters.match_key``, '' for the unkeyed; ``waiter_fields``); 9 the app
version a run is pinned to (``runs.app_version``); 10 runs waiting for a signal
(``signal_waits``); 11 each run's trace context (``runs.trace``); 12 each run's generation of
lease takes (``runs.sgen``, returned by ``acquire_lease``).
"""

SCHEMA_VERSION = 12

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    internal_id TEXT PRIMARY KEY,
    id          TEXT NOT NULL,
    name        TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    json        TEXT NOT NULL,           -- data, ts, user, v
    expires_at  INTEGER                  -- received_at + the retention; NULL: kept for ever
);
CREATE INDEX IF NOT EXISTS events_by_time ON events (received_at, internal_id);
CREATE INDEX IF NOT EXISTS events_by_name_time ON events (name, received_at, internal_id);
CREATE INDEX IF NOT EXISTS events_by_expiry ON events (expires_at) WHERE expires_at IS NOT NULL;

-- Dedupe markers: one per user-visible event id, live until expires_at.
CREATE TABLE IF NOT EXISTS event_ids (
    id          TEXT PRIMARY KEY,
    internal_id TEXT NOT NULL,
    expires_at  INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS apps (
    app_id            TEXT PRIMARY KEY,
    url               TEXT NOT NULL,
    synced_at         INTEGER NOT NULL,
    sdk               TEXT NOT NULL,
    framework         TEXT NOT NULL,
    app_version       TEXT NOT NULL,
    function_ids_json TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS functions (
    fn_id               TEXT PRIMARY KEY,
    app_id              TEXT NOT NULL,
    name                TEXT NOT NULL,
    url                 TEXT NOT NULL,
    config_json         TEXT NOT NULL,
    event_triggers_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS functions_by_app ON functions (app_id);

CREATE TABLE IF NOT EXISTS function_triggers (
    event_name TEXT NOT NULL,
    fn_id      TEXT NOT NULL,
    PRIMARY KEY (event_name, fn_id)
);
CREATE INDEX IF NOT EXISTS function_triggers_by_fn ON function_triggers (fn_id);

CREATE TABLE IF NOT EXISTS runs (
    run_id            TEXT PRIMARY KEY,
    fn_id             TEXT NOT NULL,
    app_id            TEXT NOT NULL,
    status            TEXT NOT NULL,
    events_json       TEXT NOT NULL,
    event_ids_json    TEXT NOT NULL,
    created_at        INTEGER NOT NULL,
    started_at        INTEGER,
    ended_at          INTEGER,
    output_json       TEXT NOT NULL,
    error_json        TEXT NOT NULL,
    req_version       INTEGER NOT NULL,
    disable_immediate INTEGER NOT NULL,   -- retired: always 0, never read (codec.RETIRED_RUN_COLUMNS)
    lease_owner       TEXT,
    lease_until       INTEGER,
    origin_json       TEXT,                 -- replay / rerun origin, NULL for event runs
    wake_at           INTEGER,              -- Run.wake_at; NULL once the run ended
    expires_at        INTEGER,              -- set on the ending write: ended_at + the retention
    app_version       TEXT,                 -- Run.app_version: the version the run is pinned to
    trace             TEXT,                 -- Run.trace: the traceparent of the run's root span
    sgen              INTEGER NOT NULL DEFAULT 0 -- lease takes so far (acquire_lease returns it)
);
-- list_runs: a function's runs newest first, run_id breaking ties as in the cursor.
CREATE INDEX IF NOT EXISTS runs_by_fn_time ON runs (fn_id, created_at, run_id);
-- stalled_runs: live runs by wake_at (partial: ended runs are not in it).
CREATE INDEX IF NOT EXISTS runs_by_wake ON runs (wake_at, run_id) WHERE wake_at IS NOT NULL;
-- expired_runs: ended runs by expiry (partial: runs kept for ever are not in it).
CREATE INDEX IF NOT EXISTS runs_by_expiry ON runs (expires_at, run_id) WHERE expires_at IS NOT NULL;

-- Which runs an event started (runs_for_event); kept in step with runs.event_ids_json.
CREATE TABLE IF NOT EXISTS run_events (
    internal_event_id TEXT NOT NULL,
    run_id            TEXT NOT NULL,
    PRIMARY KEY (internal_event_id, run_id)
);
CREATE INDEX IF NOT EXISTS run_events_by_run ON run_events (run_id);

CREATE TABLE IF NOT EXISTS memos (
    run_id     TEXT NOT NULL,
    step_id    TEXT NOT NULL,
    seq        TEXT NOT NULL,
    name       TEXT NOT NULL,
    value_json TEXT NOT NULL,
    detail_json TEXT,                    -- Memo.detail; NULL in files of version 3 and before
    PRIMARY KEY (run_id, step_id)
);
CREATE INDEX IF NOT EXISTS memos_by_seq ON memos (run_id, seq);

CREATE TABLE IF NOT EXISTS pending (
    run_id      TEXT NOT NULL,
    step_id     TEXT NOT NULL,
    op          TEXT NOT NULL,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    detail_json TEXT NOT NULL,
    claim_owner TEXT,                    -- who runs this planned step now (claim_pending)
    claim_until INTEGER,
    PRIMARY KEY (run_id, step_id)
);

-- receipt changes on every receive, so a handle from an earlier delivery cannot ack or
-- re-time the current one.
CREATE TABLE IF NOT EXISTS queue (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    body          TEXT NOT NULL,
    visible_at    INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt       TEXT
);
CREATE INDEX IF NOT EXISTS queue_by_visibility ON queue (visible_at, id);

-- Poison work messages (stepline.engine.delivery) and why, until redriven onto the queue.
CREATE TABLE IF NOT EXISTS dead_letters (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    body          TEXT NOT NULL,
    reason        TEXT NOT NULL,
    receive_count INTEGER NOT NULL,
    run_id        TEXT,
    dead_at       INTEGER
);

CREATE TABLE IF NOT EXISTS timers (
    name    TEXT PRIMARY KEY,
    fire_at INTEGER NOT NULL,
    body    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS timers_by_time ON timers (fire_at);

-- Runs waiting for an event (wait_for_event, cancel_on), in buckets: match_key is the key of
-- the equality the waiter's expression states ('' when it states none). Expired rows stay until
-- their timeout removes them; lookups skip them by expires_at. The index is in listing order
-- within a bucket (oldest first, key as tie-break), so a page reads one index range.
CREATE TABLE IF NOT EXISTS waiters (
    event_name   TEXT NOT NULL,
    run_id       TEXT NOT NULL,
    step_id      TEXT NOT NULL,
    kind         TEXT NOT NULL,
    expires_at   INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    expression   TEXT,
    trigger_json TEXT NOT NULL,
    match_field  TEXT,
    match_key    TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (event_name, run_id, step_id)
);
DROP INDEX IF EXISTS waiters_by_event_time;
CREATE INDEX IF NOT EXISTS waiters_by_bucket_time
    ON waiters (event_name, match_key, created_at, run_id, step_id);
-- The incoming-event fields keyed waiters of each event name have used.
CREATE TABLE IF NOT EXISTS waiter_fields (
    event_name TEXT NOT NULL,
    field      TEXT NOT NULL,
    PRIMARY KEY (event_name, field)
);
-- Erasing a run removes its waiters, whatever event they wait for.
CREATE INDEX IF NOT EXISTS waiters_by_run ON waiters (run_id);

-- Runs waiting for a signal (step.waitForSignal): one row per signal. A row past expires_at
-- reads as absent (its run's timeout wakes it); a new wait takes its place.
CREATE TABLE IF NOT EXISTS signal_waits (
    signal     TEXT PRIMARY KEY,
    run_id     TEXT NOT NULL,
    step_id    TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS signal_waits_by_run ON signal_waits (run_id);

-- Cron triggers. next_fire_at is the one fire time still to deliver; fire_due moves it on.
CREATE TABLE IF NOT EXISTS crons (
    name         TEXT PRIMARY KEY,
    cron         TEXT NOT NULL,
    timezone     TEXT NOT NULL,
    body         TEXT NOT NULL,
    next_fire_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS crons_by_time ON crons (next_fire_at);

-- Flow control. Versioned JSON state per key (GCRA arrival times, debounce and batch buffers);
-- a row past expires_at reads as absent.
CREATE TABLE IF NOT EXISTS flow_state (
    key        TEXT PRIMARY KEY,
    version    INTEGER NOT NULL,
    data       TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);

-- Key claims (function idempotency, singleton): one holder per key until expires_at.
CREATE TABLE IF NOT EXISTS flow_claims (
    key        TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);

-- Concurrency: one row per held slot (free again once until < now), and the work waiting for
-- one, in position order.
CREATE TABLE IF NOT EXISTS flow_slots (
    key        TEXT NOT NULL,
    slot       INTEGER NOT NULL,
    owner      TEXT NOT NULL,
    until      INTEGER NOT NULL,
    token      TEXT NOT NULL,
    PRIMARY KEY (key, slot)
);
CREATE TABLE IF NOT EXISTS flow_line (
    key        TEXT NOT NULL,
    position   TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (key, position)
);
"""

# (table, column, declaration) for columns that tables of earlier versions lack. Added columns
# must be nullable or carry a default: ALTER TABLE fills existing rows with it.
ADDED_COLUMNS: list[tuple[str, str, str]] = [
    ("pending", "claim_owner", "TEXT"),
    ("pending", "claim_until", "INTEGER"),
    ("memos", "detail_json", "TEXT"),
    ("runs", "origin_json", "TEXT"),
    ("runs", "wake_at", "INTEGER"),
    ("runs", "expires_at", "INTEGER"),
    ("events", "expires_at", "INTEGER"),
    ("waiters", "match_field", "TEXT"),
    ("waiters", "match_key", "TEXT NOT NULL DEFAULT ''"),
    ("runs", "app_version", "TEXT"),
    ("runs", "trace", "TEXT"),
    ("runs", "sgen", "INTEGER NOT NULL DEFAULT 0"),
]

# Run by ``db.migrate`` after the script when it upgrades a file: fill added columns of existing
# rows where NULL would be wrong. Each must be harmless to run again.
BACKFILLS: list[str] = [
    "UPDATE runs SET wake_at = created_at WHERE wake_at IS NULL AND status IN ('Queued', 'Running')",
]
