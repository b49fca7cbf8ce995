"""The checks, in the order they are reported, and running them over an ``AppView``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from stepline.check.model import AppView, CheckReport, Result, Severity

CheckFn = Callable[[AppView], list[Result]]


@dataclasses.dataclass(frozen=True)
class Check:
    id: str
    title: str
    severity: Severity
    run: CheckFn


CHECKS: list[Check] = []


def check(id: str, title: str, severity: Severity) -> Callable[[CheckFn], CheckFn]:
    """Register a check: a function from an ``AppView`` to its results."""

    def register(fn: CheckFn) -> CheckFn:
        if any(c.id == id for c in CHECKS):
            raise ValueError(f"check {id!r} is registered twice")
        CHECKS.append(Check(id, title, severity, fn))
        return fn

    return register


def run_checks(view: AppView) -> list[CheckReport]:
    # Imported here so that registering happens however this module was reached.
    from stepline.check import checks  # noqa: F401

    return [CheckReport(c.id, c.title, c.severity, c.run(view)) for c in CHECKS]
