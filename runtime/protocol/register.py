"""App sync bodies (docs/protocol.md §4): ``POST /fn/register``.

One parser for both SDK shapes: Python writes ``appname``/``deploy_type``, TS ``appName``/
``deployType`` (Go copes through case-insensitive field matching). Unknown keys are tolerated and
kept, so a newer SDK's additions survive a round trip through our store. Everything we act on is
checked at sync time (limits are ints, durations parse, CEL compiles, crons parse), because a bad
config found at event time can only fail runs, while one found now fails the sync, in front of
the developer who wrote it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import pydantic
from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

from stepline.protocol.cron import CronSpec, parse_cron
from stepline.protocol.durations import parse_duration_ms
from stepline.protocol.errors import ProtocolError, from_validation_error
from stepline.protocol.events import MAX_NAME_BYTES, at_most_bytes
from stepline.protocol.expressions import compile_expression
from stepline.protocol.jsoncanon import loads
from stepline.protocol.urls import get_query_param, strip_query_param

DEFAULT_RETRIES = 3
# The Go server caps a function's retries here, whatever the SDK asked for.
MAX_RETRIES = 20
DEPLOY_ID_PARAM = "deployId"
# Inngest's bounds on flow control.
MAX_CONCURRENCY_LIMITS = 2
MAX_DEBOUNCE_PERIOD_MS = 7 * 24 * 3600 * 1000


# -- field checks -----------------------------------------------------------------------------


def check_cel(expr: str) -> str:
    """``expr`` if it compiles as CEL within the limits (``stepline.protocol.expressions``); an
    ``ExpressionError`` (a ValueError) saying why not otherwise."""
    compile_expression(expr)
    return expr


def _check_duration(value: str) -> str:
    if parse_duration_ms(value) < 0:
        raise ValueError(f"duration {value!r} must not be negative")
    return value


def _check_period(value: str) -> str:
    if parse_duration_ms(value) <= 0:
        raise ValueError(f"period {value!r} must be positive")
    return value


def _check_url(value: str) -> str:
    scheme = value.split(":", 1)[0].lower() if ":" in value else ""
    if scheme not in ("http", "https", "ws", "wss") or "//" not in value:
        raise ValueError(f"must be an absolute http(s) or ws(s) URL, got {value!r}")
    return value


def _non_empty(value: str) -> str:
    if not value.strip():
        raise ValueError("must be a non-empty string")
    # App ids, function ids and event names are parts of store keys, as event names are.
    return at_most_bytes(value, MAX_NAME_BYTES)


Expression = Annotated[StrictStr, AfterValidator(check_cel)]
Duration = Annotated[StrictStr, AfterValidator(_check_duration)]
Period = Annotated[StrictStr, AfterValidator(_check_period)]
Url = Annotated[StrictStr, AfterValidator(_check_url)]
Name = Annotated[StrictStr, AfterValidator(_non_empty)]
Limit = Annotated[StrictInt, Field(ge=0)]
PositiveInt = Annotated[StrictInt, Field(ge=1)]


class _Part(BaseModel):
    # Keep what newer SDKs add: the config is stored and shown as registered.
    model_config = ConfigDict(extra="allow", populate_by_name=True)


# -- triggers and flow control ----------------------------------------------------------------


class Trigger(_Part):
    event: Name | None = None
    expression: Expression | None = None
    cron: StrictStr | None = None
    jitter: Duration | None = None

    @field_validator("cron")
    @classmethod
    def _cron_parses(cls, v: str | None) -> str | None:
        if v is not None:
            parse_cron(v)
        return v

    @model_validator(mode="after")
    def _one_kind(self) -> Trigger:
        if (self.event is None) == (self.cron is None):
            raise ValueError("must have exactly one of 'event' or 'cron'")
        return self

    @property
    def cron_spec(self) -> CronSpec | None:
        return parse_cron(self.cron) if self.cron is not None else None


class Concurrency(_Part):
    limit: Limit
    key: Expression | None = None
    scope: Literal["fn", "env", "account"] | None = None

    @model_validator(mode="after")
    def _shared_limits_need_a_key(self) -> Concurrency:
        # As Inngest: an env- or account-wide limit is shared by the functions whose key gives
        # the same value, so it must have one.
        if self.scope in ("env", "account") and self.key is None:
            raise ValueError(f"a key is required when scope is {self.scope!r}")
        return self


class RateLimit(_Part):
    limit: PositiveInt
    period: Period
    key: Expression | None = None

    @property
    def period_ms(self) -> int:
        return parse_duration_ms(self.period)


class Throttle(_Part):
    limit: PositiveInt
    period: Period
    key: Expression | None = None
    burst: PositiveInt | None = None

    @property
    def period_ms(self) -> int:
        return parse_duration_ms(self.period)


class Debounce(_Part):
    period: Period
    key: Expression | None = None
    timeout: Duration | None = None

    @property
    def period_ms(self) -> int:
        return parse_duration_ms(self.period)

    @property
    def timeout_ms(self) -> int | None:
        return parse_duration_ms(self.timeout) if self.timeout is not None else None


class BatchEvents(_Part):
    max_size: PositiveInt = Field(alias="maxSize")
    timeout: Duration | None = None
    key: Expression | None = None
    if_: Expression | None = Field(default=None, alias="if")

    @property
    def timeout_ms(self) -> int | None:
        return parse_duration_ms(self.timeout) if self.timeout is not None else None


class Cancel(_Part):
    event: Name
    if_: Expression | None = Field(default=None, alias="if")
    timeout: Duration | None = None

    @property
    def timeout_ms(self) -> int | None:
        return parse_duration_ms(self.timeout) if self.timeout is not None else None


class Priority(_Part):
    run: Expression | None = None


class Timeouts(_Part):
    start: Duration | None = None
    finish: Duration | None = None

    @property
    def start_ms(self) -> int | None:
        return parse_duration_ms(self.start) if self.start is not None else None

    @property
    def finish_ms(self) -> int | None:
        return parse_duration_ms(self.finish) if self.finish is not None else None


class Singleton(_Part):
    mode: Literal["skip", "cancel"]
    key: Expression | None = None


# -- steps ------------------------------------------------------------------------------------


class Retries(_Part):
    attempts: Limit


class StepRuntime(_Part):
    type: StrictStr = "http"
    url: Url

    @field_validator("url")
    @classmethod
    def _no_deploy_id(cls, v: str) -> str:
        # TS leaves deployId in the step URLs; a stored call URL must not pin one deploy.
        return strip_query_param(v, DEPLOY_ID_PARAM)


class StepConfig(_Part):
    id: StrictStr = "step"
    name: StrictStr = "step"
    runtime: StepRuntime
    retries: Retries | None = None


# -- functions and apps -----------------------------------------------------------------------


class FunctionConfig(_Part):
    id: Name
    name: StrictStr = ""
    triggers: list[Trigger] = []
    steps: dict[str, StepConfig]
    concurrency: list[Concurrency] | None = None
    rate_limit: RateLimit | None = Field(default=None, alias="rateLimit")
    throttle: Throttle | None = None
    debounce: Debounce | None = None
    batch_events: BatchEvents | None = Field(default=None, alias="batchEvents")
    idempotency: Expression | None = None
    cancel: list[Cancel] | None = None
    priority: Priority | None = None
    timeouts: Timeouts | None = None
    singleton: Singleton | None = None

    @field_validator("concurrency", mode="before")
    @classmethod
    def _concurrency_forms(cls, v: Any) -> Any:
        # The spec also allows a bare limit or a single object; no SDK sends them, Go takes them.
        if isinstance(v, int) and not isinstance(v, bool):
            return [{"limit": v}]
        if isinstance(v, dict):
            return [v]
        return v

    @field_validator("concurrency")
    @classmethod
    def _at_most_two_limits(cls, v: list[Concurrency] | None) -> list[Concurrency] | None:
        if v is not None and len(v) > MAX_CONCURRENCY_LIMITS:
            raise ValueError(f"at most {MAX_CONCURRENCY_LIMITS} limits, got {len(v)}")
        return v

    @field_validator("debounce")
    @classmethod
    def _debounce_period_in_range(cls, v: Debounce | None) -> Debounce | None:
        if v is not None and v.period_ms > MAX_DEBOUNCE_PERIOD_MS:
            raise ValueError(f"period {v.period!r} is over the 7d maximum")
        return v

    @model_validator(mode="after")
    def _compatible_flow_control(self) -> FunctionConfig:
        # A batched run has many trigger events: rules keyed on "the" event, and cancelling or
        # prioritizing by it, have no single event to go by (Inngest refuses these too).
        if self.batch_events is None:
            return self
        configured = {
            "idempotency": self.idempotency is not None,
            "rateLimit": self.rate_limit is not None,
            "cancel": bool(self.cancel),
            "priority": self.priority is not None and self.priority.run is not None,
            "singleton": self.singleton is not None,
            "debounce": self.debounce is not None,
        }
        clash = next((name for name, present in configured.items() if present), None)
        if clash is not None:
            raise ValueError(f"batchEvents and {clash} cannot be used together in one function")
        return self

    @field_validator("steps")
    @classmethod
    def _has_step(cls, v: dict[str, StepConfig]) -> dict[str, StepConfig]:
        if not v:
            raise ValueError("must hold the function's step (steps.step.runtime.url)")
        return v

    @model_validator(mode="after")
    def _default_name(self) -> FunctionConfig:
        if not self.name:
            self.name = self.id  # what the Python SDK does when no name is given
        return self

    # Aliases as attributes too: the wire names are what readers of docs/protocol.md will reach for.
    @property
    def rateLimit(self) -> RateLimit | None:  # noqa: N802
        return self.rate_limit

    @property
    def batchEvents(self) -> BatchEvents | None:  # noqa: N802
        return self.batch_events

    @property
    def step(self) -> StepConfig:
        return self.steps.get("step") or next(iter(self.steps.values()))

    @property
    def url(self) -> str:
        """The call URL (``…?fnId=<id>&stepId=step``), deployId removed."""
        return self.step.runtime.url

    @property
    def retries(self) -> int:
        """Retries after the first attempt: ``steps.step.retries.attempts``, default 3."""
        retries = self.step.retries
        attempts = DEFAULT_RETRIES if retries is None else retries.attempts
        return min(attempts, MAX_RETRIES)

    @property
    def max_attempts(self) -> int:
        return self.retries + 1

    @property
    def event_names(self) -> list[str]:
        names: list[str] = []
        for trigger in self.triggers:
            if trigger.event is not None and trigger.event not in names:
                names.append(trigger.event)
        return names

    @property
    def crons(self) -> list[str]:
        return [t.cron for t in self.triggers if t.cron is not None]

    def normalized(self) -> dict[str, Any]:
        """The config as registered, ready for JSON: wire names, no nulls, deployId stripped."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class AppSync(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    app_id: Name = Field(validation_alias=AliasChoices("appname", "appName", "app_id"))
    url: Url
    sdk: StrictStr = ""
    framework: StrictStr | None = None
    app_version: StrictStr | None = Field(default=None, validation_alias=AliasChoices("appVersion", "app_version"))
    deploy_type: StrictStr | None = Field(default=None, validation_alias=AliasChoices("deploy_type", "deployType"))
    deploy_id: StrictStr | None = Field(default=None, validation_alias=AliasChoices("deployId", "deploy_id"))
    capabilities: dict[str, Any] = {}
    v: StrictStr | None = None
    functions: list[FunctionConfig] = []

    @model_validator(mode="after")
    def _strip_deploy_id(self) -> AppSync:
        found = get_query_param(self.url, DEPLOY_ID_PARAM)
        if self.deploy_id is None and found:
            self.deploy_id = found
        self.url = strip_query_param(self.url, DEPLOY_ID_PARAM)
        return self

    def function(self, fn_id: str) -> FunctionConfig | None:
        return next((f for f in self.functions if f.id == fn_id), None)


def parse_register(body: bytes) -> AppSync:
    """Validate a register body from either SDK. Raises ProtocolError naming the field."""
    raw = loads(body)
    if not isinstance(raw, dict):
        raise ProtocolError("body: must be an object")
    if not any(k in raw for k in ("appname", "appName", "app_id")):
        raise ProtocolError("appname: is required (appName in the TypeScript shape)")
    if raw.get("functions") is None:
        raw = {**raw, "functions": []}
    try:
        app = AppSync.model_validate(raw)
    except pydantic.ValidationError as err:
        raise from_validation_error(err) from None
    seen: dict[str, int] = {}
    for index, fn in enumerate(app.functions):
        if fn.id in seen:
            raise ProtocolError(
                f"functions[{index}].id: duplicate function id {fn.id!r} (also functions[{seen[fn.id]}])"
            )
        seen[fn.id] = index
    return app
