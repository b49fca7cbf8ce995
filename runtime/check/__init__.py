"""`stepline check`: validation checks for any app (docs/check.md).

``checks.CHECKS`` lists the checks; each reads an ``AppView`` (``model``) built from a module
or file (``module``), a serve URL (``url``) or a sync payload (``payload``), and ``run_checks``
runs them all. The runtime runs the payload-level ones at every sync (``on_sync``).
"""

from stepline.check.model import AppView, CheckReport, FunctionView, Result, Severity, Status, TargetError
from stepline.check.registry import CHECKS, run_checks

__all__ = [
    "CHECKS",
    "AppView",
    "CheckReport",
    "FunctionView",
    "Result",
    "Severity",
    "Status",
    "TargetError",
    "run_checks",
]
