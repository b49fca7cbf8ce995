"""`stepline check` output: a readable list (text) or a stable JSON document (docs/check.md).

JSON (``"version": 1``; fields are only ever added)::

    {"version": 1, "target": "...", "kind": "module" | "url", "apps": ["shop"], "ok": true,
     "exit_code": 0,
     "summary": {"checks": 10, "passed": 7, "failed": 2, "not_applicable": 1,
                 "failed_by_severity": {"CRITICAL": 0, "ERROR": 0, "WARNING": 2}},
     "notes": ["..."],
     "checks": [{"id": "concurrency", "title": "...", "severity": "WARNING",
                 "status": "passed" | "failed" | "not_applicable", "reason": null | "needs source",
                 "results": [{"status": "...", "function": "...", "step": null,
                              "location": "app.py:12", "message": "...", "fix": "...",
                              "reason": null}]}]}

A bad target (exit code 2) is ``{"version": 1, "target": "...", "ok": false, "exit_code": 2,
"error": "..."}``.
"""

from __future__ import annotations

import json
import textwrap
from typing import Any

from stepline.check.model import AppView, CheckReport, Severity, Status

JSON_VERSION = 1
EXIT_OK, EXIT_FAILED, EXIT_BAD_TARGET = 0, 1, 2
_MARK = {Status.PASSED: "pass", Status.FAILED: "FAIL", Status.NOT_APPLICABLE: "n/a"}
_WIDTH = 100


def exit_code(reports: list[CheckReport]) -> int:
    return EXIT_FAILED if any(r.blocking for r in reports) else EXIT_OK


def summary(reports: list[CheckReport]) -> dict[str, Any]:
    return {
        "checks": len(reports),
        "passed": sum(r.status is Status.PASSED for r in reports),
        "failed": sum(r.status is Status.FAILED for r in reports),
        "not_applicable": sum(r.status is Status.NOT_APPLICABLE for r in reports),
        "failed_by_severity": {
            s.value: sum(r.status is Status.FAILED and r.severity is s for r in reports) for s in Severity
        },
    }


def to_json(view: AppView, reports: list[CheckReport]) -> dict[str, Any]:
    code = exit_code(reports)
    return {
        "version": JSON_VERSION,
        "target": view.target,
        "kind": view.kind,
        "apps": view.app_ids,
        "ok": code == EXIT_OK,
        "exit_code": code,
        "summary": summary(reports),
        "notes": view.notes,
        "checks": [r.to_json() for r in reports],
    }


def error_json(target: str, message: str) -> dict[str, Any]:
    return {"version": JSON_VERSION, "target": target, "ok": False, "exit_code": EXIT_BAD_TARGET, "error": message}


def render_json(view: AppView, reports: list[CheckReport]) -> str:
    return json.dumps(to_json(view, reports), indent=2)


def _wrap(text: str, indent: str) -> str:
    return textwrap.fill(text, _WIDTH, initial_indent=indent, subsequent_indent=indent + "  ")


def render_text(view: AppView, reports: list[CheckReport]) -> str:
    functions = len(view.functions)
    apps = ", ".join(view.app_ids) or "unknown app"
    lines = [f"stepline check {view.target} ({view.kind}; {apps}; {functions} function(s))", ""]
    for note in view.notes:
        lines.append(_wrap(f"note: {note}", ""))
    if view.notes:
        lines.append("")
    for report in reports:
        status = report.status
        head = f"{report.severity.value:<8}  {_MARK[status]:<4}  {report.id:<20} {report.title}"
        if status is Status.NOT_APPLICABLE and report.reason:
            head += f" ({report.reason})"
        elif status is Status.PASSED:
            passed = sum(r.status is Status.PASSED for r in report.results)
            head += f" ({passed} ok)" if passed > 1 else ""
        lines.append(head)
        failures = report.failures
        shared = {r.fix for r in failures}
        # One fix for every failure of a check (add a limit, set retries) is said once.
        once = len(failures) > 1 and len(shared) == 1
        for result in failures:
            lines.append(_wrap(f"- {result.message}", "          "))
            if result.fix and not once:
                lines.append(_wrap(f"fix: {result.fix}", "            "))
        if once and failures[0].fix:
            lines.append(_wrap(f"fix (each): {failures[0].fix}", "          "))
    s = summary(reports)
    by = s["failed_by_severity"]
    failed = ", ".join(f"{by[sev.value]} {sev.value}" for sev in Severity if by[sev.value]) or "none"
    code = exit_code(reports)
    lines += ["", f"failed: {failed}; passed: {s['passed']}; not applicable: {s['not_applicable']} -> exit {code}"]
    return "\n".join(lines)
