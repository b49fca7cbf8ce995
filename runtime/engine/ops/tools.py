"""What the op handlers share: the ports and engine services they act through."""

from __future__ import annotations

from dataclasses import dataclass

from stepline.engine.ids import IdGenerator
from stepline.engine.ports import AppStore, Clock, EventStore, RunStore, SignalStore, WaiterStore, WorkQueue
from stepline.engine.resume import Resumer
from stepline.engine.runs import RunStarter
from stepline.engine.scheduling import Waker


@dataclass
class OpTools:
    runs: RunStore  # pending ops
    apps: AppStore  # an invoke's target function
    events: EventStore  # an invoke's event
    waiters: WaiterStore  # a wait for an event
    signals: SignalStore  # a wait for a signal
    queue: WorkQueue
    waker: Waker
    clock: Clock
    ids: IdGenerator
    resumer: Resumer
    starter: RunStarter
