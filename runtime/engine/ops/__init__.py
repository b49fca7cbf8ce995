"""What the executor does for each op that makes a run wait: one small module per durable
operation. Each handler is idempotent for a re-reported op: it acts only when it records the op
as pending for the first time (docs/protocol.md §7.6)."""
