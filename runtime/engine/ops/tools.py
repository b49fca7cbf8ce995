"""What the op handlers share: the ports and engine services they act through."""

from __future__ import annotations

from dataclasses import dataclass

from runtime.engine.ids import IdGenerator
from runtime.engine.ports import Clock, RunStore, WorkQueue
from runtime.engine.resume import Resumer
from runtime.engine.runs import RunStarter
from runtime.engine.scheduling import Waker


@dataclass
class OpTools:
    store: RunStore
    queue: WorkQueue
    waker: Waker
    clock: Clock
    ids: IdGenerator
    resumer: Resumer
    starter: RunStarter
