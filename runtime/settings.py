"""Every setting the runtime reads, in one place.

Deployed Lambdas get these as environment variables (the CDK stack sets exactly these names);
`stepline dev` fills them from its flags. Nothing else in the package reads the environment.
"""

from __future__ import annotations

import math
import os
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, field_validator

from stepline.engine.records import DAY_MS

ENV_PREFIX = "STEPLINE_"

# The executor Lambda keeps this much of its time, after the last call it may start has ended,
# for that call's writes (memo, lease release, re-enqueueing the rest).
DEADLINE_MARGIN_S = 15
# AWS's guidance for an SQS event source mapping: the queue's visibility timeout at least six
# times the function's timeout, so a batch that is throttled and retried is not redelivered
# while a retry may still run it.
ESM_VISIBILITY_FACTOR = 6


def parse_steps_limits(text: str) -> dict[str, int]:
    """``"app-fn=5000, other=200"`` as ``{"app-fn": 5000, "other": 200}``; ValueError naming the
    entry that is not ``<function id>=<positive integer>``."""
    limits: dict[str, int] = {}
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        fn_id, sep, count = entry.rpartition("=")
        if not sep or not fn_id.strip() or not count.strip().isdigit() or int(count) < 1:
            raise ValueError(f"{entry!r}: expected <function id>=<steps>, steps a positive integer")
        limits[fn_id.strip()] = int(count)
    return limits


def parse_app_origins(text: str) -> list[str]:
    """``"https://a.example.com, http://10.0.0.5:8080"`` as a list of origins; ValueError naming
    the entry that is not ``http(s)://host[:port]`` (no path, query, fragment or user)."""
    origins: list[str] = []
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        try:
            parts = urlsplit(entry)
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            parts = None
        if (
            parts is None
            or parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.path not in ("", "/")
            or parts.query
            or parts.fragment
            or parts.username is not None
        ):
            raise ValueError(f"{entry!r}: expected an origin, http(s)://host[:port], with no path")
        origins.append(entry.rstrip("/"))
    return origins


class Settings(BaseModel):
    # "dev": any event key is accepted and calls are unsigned unless a signing key is set, as
    # Inngest's dev server does. "cloud": only configured event keys, signed calls, bearer auth.
    mode: Literal["dev", "cloud"] = "dev"
    signing_key: str | None = None
    signing_key_fallback: str | None = None
    event_keys: list[str] = Field(default_factory=list)
    # The operators' credential (cancel, replay, erase, dead letters, the dashboard), apart from
    # the apps' signing key: an app holding the signing key can do what the SDKs do and no more.
    # Hex, like a signing key; requests carry its SHA-256 as the bearer (stepline.api.auth).
    operator_key: str | None = None

    # Outside dev mode, calls to apps (and app sync) refuse loopback, private, link-local and
    # other internal addresses (stepline.engine.outbound). True admits private, unique-local
    # and loopback addresses: apps inside a VPC, or on the same machine. Never link-local or the
    # metadata service.
    allow_private_app_urls: bool = False
    # A run of an app invoked by its Lambda ARN keeps calling the version its first call ran
    # (stepline.engine.pinning); False sends every call to the registered ARN (alias) instead.
    pin_app_versions: bool = True
    # A sync that moves an existing app to another origin (scheme, host, port) is refused outside
    # dev mode, unless forced (`POST /v1/apps/sync` with "force": true) or the new origin is
    # listed here (e.g. "https://app.example.com").
    allowed_app_origins: list[str] = Field(default_factory=list)

    # Executor timing. A call that takes longer than step_timeout_s is a retriable failure.
    step_timeout_s: float = 120.0
    # How long one executor invocation may go on starting calls before it re-enqueues the run. A
    # Lambda uses the smaller of this and its remaining time less the margin and one full call
    # (stepline.handlers.executor). Its timeout, and six times that as the work queue's visibility
    # timeout, follow from it: 240 s keeps a crashed batch's return under 40 minutes.
    invocation_budget_s: float = 240.0
    # Retry backoff: base * 2**attempt with full jitter, capped.
    retry_base_ms: int = 1_000
    retry_cap_ms: int = 60 * 60 * 1_000
    # Poison messages (stepline.engine.delivery): a work message whose handling fails this many
    # times is dead-lettered and its run marked Failed. Between failures it comes back after
    # a backoff of base * 2**n with jitter, capped (seconds are whole: under 1 s means at once).
    max_deliveries: int = Field(10, ge=1, le=100)
    redelivery_base_ms: int = Field(1_000, ge=0)
    redelivery_cap_ms: int = Field(60_000, ge=0)
    # The sweeper (stepline.engine.sweeper) re-arms runs whose wake_at passed more than
    # sweep_grace_s ago with nothing moving them: longer than SQS's longest delay (15 min) plus
    # Scheduler's early firing and delivery window, so a healthy wait is never touched.
    # `stepline dev` sweeps every sweep_interval_s; on AWS a schedule does, at the same rate.
    # One sweep re-arms at most sweep_max_runs runs (a Lambda's budget), then queues the next.
    sweep_grace_s: float = Field(20 * 60, ge=0)
    sweep_interval_s: float = Field(5 * 60, gt=0)
    sweep_max_runs: int = Field(500, ge=1)
    # A call request whose events and memos would exceed this many bytes is sent with
    # `use_api: true` instead, and the SDK fetches them from /v0/runs/{id} (docs/protocol.md §5.3). This
    # keeps each call small however large a run's state grows (Lambda takes at most 6 MB).
    use_api_threshold_bytes: int = 1024 * 1024
    # The most a run's state (events and step outputs) may hold: Inngest's 32 MiB; deployed, what
    # one API Lambda response can serve (stepline.engine.payload_policy, set by the stack).
    max_run_state_bytes: int = Field(32 * 1024 * 1024, ge=1024)

    # Retention: ended runs (their steps and payloads with them) and stored events are erased
    # this many days after the run ended or the event was received (0: kept for ever). Deployed,
    # the stack's retentionDays sets it (with a matching S3 lifecycle and DynamoDB TTL).
    retention_days: int = Field(0, ge=0, le=3650)

    # Caps on fan-out (stepline.engine.limits): runs one Event API request may start (events
    # times the functions each triggers), ops one app reply may carry, and steps per run
    # (Inngest's 1,000), with other step limits per function as "<function id>=<steps>,...".
    max_runs_per_request: int = Field(5_000, ge=1)
    max_ops_per_reply: int = Field(1_000, ge=1)
    max_steps_per_run: int = Field(1_000, ge=1)
    max_steps_by_function: str = ""

    # Ingest limits (Inngest's: 3 MiB per request, 5000 events per request).
    max_event_body_bytes: int = 3 * 1024 * 1024
    max_events_per_request: int = 5_000
    # Inngest's largest event. It binds within a batch only when the body limit is raised above
    # it; a refusal names the event's index.
    max_event_bytes: int = 3 * 1024 * 1024
    max_register_body_bytes: int = 16 * 1024 * 1024
    # A checkpoint carries step outputs (4 MiB each at most, docs/protocol.md §17.1); API
    # Gateway takes 10 MB bodies.
    max_checkpoint_body_bytes: int = 10 * 1024 * 1024
    # A send of more events than this starts their runs from the work queue once they are stored
    # (stepline.engine.ingest), so a full request (5,000 events) is answered well within API
    # Gateway's 30 s; smaller ones start their runs before answering.
    ingest_inline_events: int = Field(100, ge=1)

    # Checkpointed calls (docs/architecture.md, "Checkpointed execution"): the SDK runs steps
    # inline and reports each result as it goes. Off, every step is a call of its own.
    checkpointing: bool = True
    # How long a checkpointing call may keep starting new steps before it ends and the run is
    # called again (also capped by step_timeout_s and the invocation's remaining budget).
    checkpoint_call_budget_s: float = Field(60.0, gt=0)

    # AWS adapter wiring (deployed only).
    table_name: str | None = None
    queue_url: str | None = None
    queue_arn: str | None = None
    dlq_url: str | None = None
    schedule_group: str | None = None
    scheduler_role_arn: str | None = None
    payload_bucket: str | None = None
    region: str | None = None

    # Deployed, the keys live in Secrets Manager, not in the environment: these name the secrets
    # (name or ARN), and stepline.handlers.wiring reads them at cold start and every
    # keys_refresh_s after.
    # The signing key secret holds the key, or JSON {"signing_key": ..., "signing_key_fallback":
    # ...}; the event keys secret holds keys separated by commas or newlines, or a JSON list.
    signing_key_secret_id: str | None = None
    event_keys_secret_id: str | None = None
    # The operator key's secret: the key, or JSON {"operator_key": ...}.
    operator_key_secret_id: str | None = None
    # How long keys read from secrets are trusted before they are read again (at most five
    # minutes): a rotated or revoked key stops working within this time, without a deploy.
    keys_refresh_s: float = Field(300.0, gt=0, le=300)
    # Opaque. Changing it (the stack's keysRevision) replaces every Lambda container, so each
    # reads the secrets at once rather than within keys_refresh_s.
    keys_revision: str | None = None
    # Verified webhooks (docs/webhooks.md). The sources the deployment sets (the stack's
    # stepline:webhooks), as a JSON list of source configurations; read only through the API.
    webhook_sources: str = ""
    # Deployed: the name prefix of the Secrets Manager secrets the API may read webhook secrets
    # from ("<stack>/webhooks/"). Set, a source must name its secret (secret_id) under it, and
    # inline secrets are refused: secrets never sit in the table.
    webhook_secret_prefix: str = ""

    @property
    def signing_keys(self) -> list[str]:
        return [k for k in (self.signing_key, self.signing_key_fallback) if k]

    @property
    def operator_keys(self) -> list[str]:
        return [self.operator_key] if self.operator_key else []

    @field_validator("max_steps_by_function")
    @classmethod
    def _steps_by_function(cls, value: str) -> str:
        parse_steps_limits(value)
        return value

    @field_validator("webhook_sources")
    @classmethod
    def _webhook_sources(cls, value: str) -> str:
        if value.strip():
            from stepline.webhooks.model import deployed_sources

            deployed_sources(value)  # raises ValueError naming the source and the field
        return value

    def steps_limits(self) -> dict[str, int]:
        """The per-function step limits of ``max_steps_by_function``, by function id."""
        return parse_steps_limits(self.max_steps_by_function)

    @property
    def retention_ms(self) -> int | None:
        """How long the stores keep ended runs and stored events; None: for ever."""
        return self.retention_days * DAY_MS if self.retention_days else None

    @property
    def lease_ms(self) -> int:
        # Long enough that a live executor renews rarely (see engine.leases.Leases.renew), short
        # enough that a crashed one's run is picked up again within minutes.
        return int(self.step_timeout_s * 3 * 1000)

    @property
    def executor_timeout_s(self) -> int:
        """The executor's worst case for one message: a call started at the very end of a full
        budget, running its whole step timeout, then the margin for its writes."""
        return math.ceil(self.invocation_budget_s + self.step_timeout_s + DEADLINE_MARGIN_S)

    @property
    def visibility_timeout_s(self) -> int:
        """The work queue's visibility timeout: AWS's guidance for an event source mapping."""
        return ESM_VISIBILITY_FACTOR * self.executor_timeout_s

    def record_budget_ms(self, remaining_ms: int) -> int:
        """How long an executor with ``remaining_ms`` left may go on starting calls: the last
        one it starts must end, step timeout and all, with the margin still left. 0 or less:
        none may start."""
        budget = remaining_ms - (DEADLINE_MARGIN_S + self.step_timeout_s) * 1000
        return int(min(self.invocation_budget_s * 1000, budget))

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for name in cls.model_fields:
            raw = env.get(ENV_PREFIX + name.upper())
            if raw is None:
                continue
            if name in ("event_keys", "allowed_app_origins"):
                values[name] = [k.strip() for k in raw.split(",") if k.strip()]
            else:
                values[name] = raw
        return cls.model_validate(values)

    def to_env(self) -> dict[str, str]:
        """The environment variables that reproduce these settings (used by the CDK stack)."""
        out: dict[str, str] = {}
        for name, value in self.model_dump(exclude_none=True).items():
            if name in ("event_keys", "allowed_app_origins"):
                value = ",".join(value)
            out[ENV_PREFIX + name.upper()] = str(value)
        return out
