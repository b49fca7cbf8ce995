"""The checks, in the order they are reported (``checks.CHECKS``), and running them over an
``AppView``."""

from __future__ import annotations

from stepline.check.checks import CHECKS
from stepline.check.model import AppView, CheckReport

__all__ = ["CHECKS", "run_checks"]


def run_checks(view: AppView) -> list[CheckReport]:
    return [CheckReport(c.id, c.title, c.severity, c.run(view)) for c in CHECKS]
