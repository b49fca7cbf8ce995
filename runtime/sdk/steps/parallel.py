"""``step.parallel``: run branches of steps side by side.

Every branch runs up to its first new step; all their new steps are reported together (one 206
with several ops) and the server runs them concurrently. Once each is memoized, the branches
move on to their next steps, and the group returns when every branch has returned.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

from stepline.sdk.errors import SdkError
from stepline.sdk.steps.core import Execution, Interrupt, Skip


def _branches(callables: tuple[Any, ...]) -> Sequence[Callable[[], Any]]:
    if len(callables) == 1 and isinstance(callables[0], (list, tuple)):
        callables = tuple(callables[0])
    for cb in callables:
        if not callable(cb):
            raise SdkError("parallel: pass callables, e.g. lambda: step.run('a', fetch_a)")
    return callables


class _Collector:
    def __init__(self, ex: Execution) -> None:
        self.ex = ex
        self.ops: list[dict[str, Any]] = []
        self.no_retry = False
        self.skipped = False

    def interrupted(self, interrupt: Interrupt) -> None:
        self.ops.extend(interrupt.ops)
        self.no_retry = self.no_retry or interrupt.no_retry

    def finish(self, outputs: list[Any]) -> tuple[Any, ...]:
        if self.ops:
            raise Interrupt(self.ops, self.no_retry)
        if self.skipped:
            # Some branch is still waiting on a step other than the targeted one: the code
            # after the group must not run on missing results.
            raise Skip("parallel")
        return tuple(outputs)


def parallel_sync(ex: Execution, callables: tuple[Any, ...]) -> tuple[Any, ...]:
    collector = _Collector(ex)
    outputs: list[Any] = []
    ex.parallel_depth += 1
    try:
        for cb in _branches(callables):
            try:
                outputs.append(cb())
            except Interrupt as interrupt:
                collector.interrupted(interrupt)
            except Skip:
                collector.skipped = True
    finally:
        ex.parallel_depth -= 1
    return collector.finish(outputs)


async def parallel_async(ex: Execution, callables: tuple[Any, ...]) -> tuple[Any, ...]:
    collector = _Collector(ex)
    outputs: list[Any] = []
    ex.parallel_depth += 1
    try:
        for cb in _branches(callables):
            try:
                result = cb()
                if inspect.isawaitable(result):
                    result = await result
                outputs.append(result)
            except Interrupt as interrupt:
                collector.interrupted(interrupt)
            except Skip:
                collector.skipped = True
    finally:
        ex.parallel_depth -= 1
    return collector.finish(outputs)
