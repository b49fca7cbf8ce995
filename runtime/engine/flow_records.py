"""What flow control stores: versioned documents under a flow-control key, and concurrency slots
with the line of work waiting for them. Plain records every adapter family persists the same way
(as ``stepline.engine.records``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

JSON = Any


@dataclass
class FlowState:
    """A small JSON document under a flow-control key: a GCRA arrival time (throttle, rate
    limit) or a debounce or batch buffer. ``version`` grows on every write, so a
    compare-and-set on it detects any write in between. Past ``expires_at`` it reads as absent."""

    key: str
    version: int
    data: dict[str, JSON]
    expires_at: int


@dataclass
class SlotHolder:
    """Concurrency slot ``index`` of a key, held by ``owner`` until ``until`` (free again once
    ``until < now``, so a crashed holder's slot comes back). ``token`` is the position of the
    line entry the holder was admitted from, "" when it never waited."""

    index: int
    owner: str
    until: int
    token: str = ""


@dataclass
class LineEntry:
    """Work waiting for a concurrency slot. ``position`` orders the line (smaller first: enqueue
    time minus priority); ``body`` is the queue message that carries the work on."""

    position: str
    body: dict[str, JSON]
    created_at: int


@dataclass
class SlotView:
    """A concurrency key as one read sees it: every slot item, live or expired (the engine
    judges expiry), and the head of the line in position order."""

    holders: list[SlotHolder] = field(default_factory=list)
    line: list[LineEntry] = field(default_factory=list)
