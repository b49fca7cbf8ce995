"""Flow control, one module per rule (docs/protocol.md §4 function config; docs/flow-control.md).

``admission.FlowControl`` applies the rules that decide whether and when a run starts (rate
limit, debounce, batching, idempotency, singleton, throttle); ``concurrency.Concurrency`` limits
the steps executing at once, around each call the executor makes. The rules live here; the store
only keeps their state (versioned flow state, key claims, slots and their line: see ports).
"""
