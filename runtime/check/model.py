"""What the checks look at (``AppView``) and what they report (``Result``, ``CheckReport``).

An ``AppView`` is whatever could be learned about an app, from any of three sources:

* a Stepline-SDK module or file: the SDK objects its import created, plus its source text;
* the URL of any SDK's serve endpoint: its introspection (GET) and its sync payload (PUT);
* a sync the runtime just accepted: the payload alone.

Anything that could not be learned is ``None`` (or empty), and a check that needs it reports
"not applicable" with the reason, rather than passing.
"""

from __future__ import annotations

import ast
import dataclasses
import enum
from collections.abc import Callable
from typing import Any


class Severity(str, enum.Enum):
    CRITICAL = "CRITICAL"
    ERROR = "ERROR"
    WARNING = "WARNING"

    @property
    def blocking(self) -> bool:
        """A failure of this severity makes `stepline check` exit non-zero."""
        return self in (Severity.CRITICAL, Severity.ERROR)


class Status(str, enum.Enum):
    PASSED = "passed"
    FAILED = "failed"
    NOT_APPLICABLE = "not_applicable"


class Sdk(str, enum.Enum):
    """The SDK an app is written with, so fix hints use its syntax (stepline.check.hints)."""

    STEPLINE = "stepline"
    PYTHON = "python"  # the official `inngest` Python SDK
    TYPESCRIPT = "typescript"
    GO = "go"
    UNKNOWN = "unknown"

    @property
    def label(self) -> str:
        return {"python": "official Python SDK", "typescript": "TypeScript", "go": "Go"}.get(self.value, self.value)

    @classmethod
    def from_wire(cls, name: str | None) -> Sdk:
        """From the ``X-Inngest-SDK`` header (``inngest-py:v0.5.19``) or a register payload's
        ``sdk`` (``py:v0.5.19``, ``js:v3.27.0``, ``stepline-py:v0.1.0``)."""
        text = (name or "").lower()
        for prefixes, sdk in (
            (("stepline",), cls.STEPLINE),
            (("inngest-py", "py:"), cls.PYTHON),
            (("inngest-js", "js:"), cls.TYPESCRIPT),
            (("inngest-go", "go:", "inngestgo"), cls.GO),
        ):
            if text.startswith(prefixes):
                return sdk
        return cls.UNKNOWN


NEEDS_SOURCE = "needs source"
FAILED_EVENT = "inngest/function.failed"


@dataclasses.dataclass
class Result:
    """One finding of one check, about the app, a function or a step."""

    status: Status
    message: str
    fix: str | None = None
    function: str | None = None  # the function's id as registered (``<app>-<id>``)
    step: str | None = None
    location: str | None = None  # "path:line" when the source is known
    reason: str | None = None  # why a not-applicable result could not be decided

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "function": self.function,
            "step": self.step,
            "location": self.location,
            "message": self.message,
            "fix": self.fix,
            "reason": self.reason,
        }


@dataclasses.dataclass
class CheckReport:
    id: str
    title: str
    severity: Severity
    results: list[Result]

    @property
    def status(self) -> Status:
        if any(r.status is Status.FAILED for r in self.results):
            return Status.FAILED
        if any(r.status is Status.PASSED for r in self.results):
            return Status.PASSED
        return Status.NOT_APPLICABLE

    @property
    def reason(self) -> str | None:
        """Why the whole check is not applicable (the first reason given)."""
        if self.status is not Status.NOT_APPLICABLE:
            return None
        return next((r.reason for r in self.results if r.reason), None)

    @property
    def failures(self) -> list[Result]:
        return [r for r in self.results if r.status is Status.FAILED]

    @property
    def blocking(self) -> bool:
        return self.status is Status.FAILED and self.severity.blocking

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "severity": self.severity.value,
            "status": self.status.value,
            "reason": self.reason,
            "results": [r.to_json() for r in self.results],
        }


@dataclasses.dataclass
class SourceFile:
    path: str  # as shown in messages (relative to the working directory when under it)
    text: str
    tree: ast.Module


@dataclasses.dataclass
class FunctionView:
    """One function as registered, plus what the SDK objects add when they are at hand."""

    id: str  # as registered: ``<app>-<id>``
    config: dict[str, Any]  # its register entry (wire names)
    app_id: str | None = None
    served: bool | None = None  # None: unknown (only the served functions are visible)
    # Trigger event name -> the EventData model bound to it, or None for a plain name. None
    # as a whole: unknown (no Stepline SDK objects to look at).
    event_models: dict[str, str | None] | None = None
    location: str | None = None
    client: str | None = None  # how the client shows in messages, e.g. "Client('shop')"

    @property
    def local_id(self) -> str:
        """The id as the developer wrote it (without the ``<app>-`` prefix)."""
        prefix = f"{self.app_id}-" if self.app_id else ""
        return self.id[len(prefix) :] if prefix and self.id.startswith(prefix) else self.id

    @property
    def name(self) -> str:
        name = self.config.get("name")
        return name if isinstance(name, str) and name else self.id

    @property
    def triggers(self) -> list[dict[str, Any]]:
        triggers = self.config.get("triggers")
        return [t for t in triggers if isinstance(t, dict)] if isinstance(triggers, list) else []

    @property
    def event_names(self) -> list[str]:
        return [t["event"] for t in self.triggers if isinstance(t.get("event"), str)]

    @property
    def is_failure_handler(self) -> bool:
        """The ``on_failure`` handler an SDK generates: it takes no options of its own."""
        names = self.event_names
        return bool(names) and all(n == FAILED_EVENT for n in names) and self.id.endswith("-failure")

    @property
    def label(self) -> str:
        return f"{self.id!r}" + (f" ({self.location})" if self.location else "")


@dataclasses.dataclass
class ServeInfo:
    found: bool
    detail: str
    location: str | None = None


@dataclasses.dataclass
class AppView:
    target: str
    kind: str  # "module", "url" or "sync"
    app_ids: list[str] = dataclasses.field(default_factory=list)
    functions: list[FunctionView] = dataclasses.field(default_factory=list)
    sources: list[SourceFile] = dataclasses.field(default_factory=list)
    serve: ServeInfo | None = None
    # Stepline SDK objects were inspected (typed events, served functions are known).
    sdk_objects: bool = False
    # The app's import stopped on a mistake the checks report (a duplicate function id).
    import_error: str | None = None
    # Function count the serve endpoint reported on GET (URL targets).
    introspected_count: int | None = None
    sdk: Sdk = Sdk.UNKNOWN
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def has_source(self) -> bool:
        return bool(self.sources)


class TargetError(Exception):
    """The target cannot be checked: bad usage, unreachable, or not an app (exit code 2)."""


CheckFn = Callable[[AppView], list[Result]]


@dataclasses.dataclass(frozen=True)
class Check:
    """One check: its id, title and severity, and the function that judges an ``AppView``."""

    id: str
    title: str
    severity: Severity
    run: CheckFn
