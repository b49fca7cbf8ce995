"""What a deployment may choose, and where each choice comes from.

Each field is read from CDK context (``cdk.json`` or ``-c stepline:<name>=...``), else from the
environment (``STEPLINE_CDK_<NAME>``), else the default below. Keys are never given here, only the
names of secrets that hold them: a value passed as context would be written into the template.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from stepline.aws.resources import CRON_GROUP_SUFFIX
from stepline.settings import parse_app_origins
from stepline.telemetry.otlp_headers import SECRET_ID_ENV as OTLP_HEADERS_SECRET_ENV
from stepline.webhooks.model import deployed_sources

CONTEXT_PREFIX = "stepline:"
# What the deployment's webhook sources may take of the API Lambda's environment (4 KB in all,
# of which the other settings take about half).
WEBHOOKS_ENV_MAX_BYTES = 1536
KMS_CREATE = "create"
ENV_PREFIX = "STEPLINE_CDK_"

# EventBridge Scheduler: a schedule group's name is at most 64 characters. The longest group the
# stack names is "<stack>-timers-cron", so the stack name gets what is left.
SCHEDULE_GROUP_NAME_MAX = 64
TIMERS_GROUP_SUFFIX = "-timers"
STACK_NAME_MAX = SCHEDULE_GROUP_NAME_MAX - len(TIMERS_GROUP_SUFFIX + CRON_GROUP_SUFFIX)

# The retention periods CloudWatch Logs accepts (0 keeps logs forever).
LOG_RETENTION_DAYS = (
    0,
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)


# Where the ADOT layer's collector takes OTLP/HTTP inside the Lambda's sandbox.
ADOT_COLLECTOR_ENDPOINT = "http://localhost:4318"


class StackConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    stack_name: str = "Stepline"
    # Twice the executor's: half the API's cold start for a few cents per million events
    # (docs/deploy.md, "Memory size and architecture").
    api_memory_mb: int = Field(1024, ge=128, le=10240)
    # The benchmark prices steps at this size (docs/benchmarks.md).
    executor_memory_mb: int = Field(512, ge=128, le=10240)
    log_retention_days: int = 30
    # "retain" keeps the table, the payload bucket and the secrets when the stack is deleted.
    removal_policy: Literal["retain", "destroy"] = "retain"
    architecture: Literal["arm64", "x86_64"] = "arm64"
    # Existing secrets (name or ARN) to use instead of the ones the stack creates.
    signing_key_secret: str = ""
    event_keys_secret: str = ""
    operator_key_secret: str = ""
    # Bump after changing a secret's value to have every Lambda read it at once (they re-read
    # the secrets every five minutes by themselves).
    keys_revision: str = ""

    # -- bounded by default: what Stepline may take of the account -----------------------------
    # Concurrent executions reserved for (and capping) the API Lambda; 0 reserves none.
    api_reserved_concurrency: int = Field(50, ge=0)
    # The most executor Lambdas the queue may keep busy at once (0: no limit; else 2..1000).
    executor_max_concurrency: int = Field(50, ge=0, le=1000)
    # Records per executor invocation. Records of one batch run one after another, so 1 keeps
    # a fan-out's parallel steps in parallel Lambdas.
    executor_batch_size: int = Field(1, ge=1, le=10)
    # API Gateway throttling, requests per second and the burst above it: the stage's default
    # (the public pages), and each route group's own, so that one group's flood (bad event
    # keys, say) cannot starve another's (the SDKs' calls).
    api_rate_limit: int = Field(1000, ge=1)
    api_burst_limit: int = Field(2000, ge=1)
    event_api_rate_limit: int = Field(500, ge=1)
    event_api_burst_limit: int = Field(1000, ge=1)
    sdk_rate_limit: int = Field(1000, ge=1)
    sdk_burst_limit: int = Field(2000, ge=1)
    operator_rate_limit: int = Field(20, ge=1)
    operator_burst_limit: int = Field(40, ge=1)
    # Fan-out caps the runtime enforces (stepline.engine.limits; STEPLINE_MAX_*).
    max_runs_per_request: int = Field(5000, ge=1)
    max_ops_per_reply: int = Field(1000, ge=1)
    max_steps_per_run: int = Field(1000, ge=1)
    max_steps_by_function: str = ""
    # Let the executor and app sync call apps on private and loopback addresses (apps inside a
    # VPC). Off, outbound calls refuse every internal address; link-local and metadata addresses
    # stay refused either way (docs/security.md).
    allow_private_app_urls: bool = False
    # Origins an app may be moved to by a plain sync (comma-separated ``https://host[:port]``);
    # a sync moving an app anywhere else is refused unless forced (docs/security.md).
    allowed_app_origins: str = ""
    # Runs of apps invoked by their Lambda ARN keep calling the version they started on
    # (stepline.engine.pinning); false sends every call to the registered alias.
    pin_app_versions: bool = True
    # Lambda functions (ARNs, comma-separated, unqualified) of apps deployed outside this stack
    # (other stacks, other tools) that Stepline calls by lambda:Invoke: the executor and the API
    # may invoke exactly these and their versions. Apps wired with the app construct
    # (infra/app_function.py) are granted by it and need no entry here.
    app_functions: str = ""

    # -- verified webhooks (docs/webhooks.md) ---------------------------------------------------
    # Sources the deployment sets, each as POST /v1/webhooks takes it but without a secret: the
    # stack makes the secret "<stack>/webhooks/<source>" for the provider's value to be put in.
    webhooks: list[dict[str, Any]] = Field(default_factory=list)

    # -- data: encryption, retention -------------------------------------------------------------
    # "" (AWS-managed and AWS-owned keys), "create" (a customer managed key made by the stack),
    # or the ARN of an existing customer managed key: the table, queues, bucket, secrets and log
    # groups are then encrypted with it.
    kms_key: str = ""
    # Runs (with their steps and payloads) and events are erased this many days after the run
    # ended or the event was received; 0 keeps them for ever.
    retention_days: int = Field(0, ge=0, le=3650)
    # DynamoDB point-in-time recovery window (1-35 days; 0 turns it off). Erased and expired
    # data stays restorable this long.
    point_in_time_recovery_days: int = Field(35, ge=0, le=35)
    # Payload objects expire after this many days (0: never), whatever the retention. A payload
    # must outlive the longest run that may read it, sleeps included.
    payload_expiration_days: int = Field(0, ge=0)

    # -- alarms ----------------------------------------------------------------------------------
    # The queue-age alarm fires when the oldest message has waited this long.
    queue_age_alarm_minutes: int = Field(30, ge=1)
    # An existing SNS topic the alarms notify (empty: alarms without actions).
    alarm_topic_arn: str = ""

    # -- traces (docs/operating.md, "Traces") ----------------------------------------------------
    # "off"; "otlp": the Lambdas export each run's spans with OTLP/HTTP to ``otlp_endpoint`` (a
    # collector, or a tracing service's OTLP endpoint); "adot": to the collector of the AWS
    # Distro for OpenTelemetry Lambda layer ``adot_layer_arn``, which sends them to X-Ray.
    traces: Literal["off", "otlp", "adot"] = "off"
    otlp_endpoint: str = Field("", validate_default=True)
    adot_layer_arn: str = Field("", validate_default=True)
    # The share of runs traced (OTEL_TRACES_SAMPLER_ARG), decided once per run when it is created.
    trace_sample_ratio: float = Field(1.0, ge=0, le=1)
    # For traces=otlp: a Secrets Manager secret (name, or complete ARN) holding the exporter's
    # headers (a backend's API key: "api-key=...,x-other=..." as OTEL_EXPORTER_OTLP_HEADERS
    # writes them, or a JSON object). The Lambdas read it at cold start and may read only it.
    otlp_headers_secret: str = Field("", validate_default=True)

    @field_validator("stack_name")
    @classmethod
    def _stack_name(cls, value: str) -> str:
        # CloudFormation's rule; the schedule group names derive from it and allow the same.
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9-]{0,100}", value):
            raise ValueError("must start with a letter and hold only letters, digits and '-'")
        # Refused here rather than by CloudFormation halfway through a deploy.
        if len(value) > STACK_NAME_MAX:
            raise ValueError(
                f"must be at most {STACK_NAME_MAX} characters: the schedule group "
                f"{value + TIMERS_GROUP_SUFFIX + CRON_GROUP_SUFFIX!r} derived from it would be longer than "
                f"EventBridge Scheduler's {SCHEDULE_GROUP_NAME_MAX}"
            )
        return value

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            raise ValueError(f"must be one of {', '.join(map(str, LOG_RETENTION_DAYS))}")
        return value

    @field_validator("executor_max_concurrency")
    @classmethod
    def _max_concurrency(cls, value: int) -> int:
        if value == 1:
            raise ValueError("must be 0 (no limit) or at least 2 (the SQS event source minimum)")
        return value

    @field_validator("kms_key")
    @classmethod
    def _kms_key(cls, value: str) -> str:
        if value not in ("", KMS_CREATE) and not re.fullmatch(r"arn:aws[\w-]*:kms:[\w-]+:\d{12}:key/[\w-]+", value):
            raise ValueError('must be empty (AWS-managed keys), "create", or a KMS key ARN (arn:aws:kms:...:key/...)')
        return value

    @field_validator("app_functions")
    @classmethod
    def _app_functions(cls, value: str) -> str:
        from stepline.engine.app_targets import FunctionArn

        for entry in cls.split_list(value):
            if FunctionArn.parse(entry).qualifier is not None:  # raises ValueError naming a non-ARN
                raise ValueError(f"{entry!r}: give the function's unqualified ARN (its versions are granted with it)")
        return value

    @staticmethod
    def split_list(value: str) -> list[str]:
        return [entry.strip() for entry in value.split(",") if entry.strip()]

    @field_validator("max_steps_by_function")
    @classmethod
    def _steps_by_function(cls, value: str) -> str:
        from stepline.settings import parse_steps_limits

        parse_steps_limits(value)  # raises ValueError naming the bad entry
        return value

    @field_validator("allowed_app_origins")
    @classmethod
    def _app_origins(cls, value: str) -> str:
        parse_app_origins(value)  # raises ValueError naming the bad entry
        return value

    @field_validator("otlp_endpoint")
    @classmethod
    def _otlp_endpoint(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("traces") == "otlp" and not re.fullmatch(r"https?://[^\s/]+(/\S*)?", value):
            raise ValueError(f"traces=otlp needs the OTLP/HTTP endpoint (https://host[:port]), got {value!r}")
        return value

    @field_validator("otlp_headers_secret")
    @classmethod
    def _otlp_headers_secret(cls, value: str, info: ValidationInfo) -> str:
        if value and info.data.get("traces") != "otlp":
            raise ValueError("the OTLP exporter's headers are for traces=otlp (the ADOT collector takes no headers)")
        arn = r"arn:aws[\w-]*:secretsmanager:[\w-]+:\d{12}:secret:\S+"
        if value.startswith("arn:") and not re.fullmatch(arn, value):
            raise ValueError(f"must be a secret's name or its complete ARN (arn:aws:secretsmanager:...), got {value!r}")
        return value

    @field_validator("adot_layer_arn")
    @classmethod
    def _adot_layer(cls, value: str, info: ValidationInfo) -> str:
        layer = r"arn:aws[\w-]*:lambda:[\w-]+:\d{12}:layer:[\w-]+:\d+"
        if info.data.get("traces") == "adot" and not re.fullmatch(layer, value):
            raise ValueError(f"traces=adot needs the ADOT Lambda layer's version ARN, got {value!r}")
        return value

    def trace_environment(self, role: str) -> dict[str, str]:
        """The OTEL_* variables a Lambda in ``role`` gets (none with traces off)."""
        if self.traces == "off":
            return {}
        endpoint = self.otlp_endpoint if self.traces == "otlp" else ADOT_COLLECTOR_ENDPOINT
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_SERVICE_NAME": f"stepline-{role}",
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": str(self.trace_sample_ratio),
        }
        if self.otlp_headers_secret:
            env[OTLP_HEADERS_SECRET_ENV] = self.otlp_headers_secret
        return env

    @field_validator("webhooks", mode="before")
    @classmethod
    def _webhooks_json(cls, value: Any) -> Any:
        # From the environment (STEPLINE_CDK_WEBHOOKS) or -c, the list comes as JSON text.
        if isinstance(value, str):
            try:
                return json.loads(value) if value.strip() else []
            except ValueError:
                raise ValueError("expected a JSON list of webhook sources") from None
        return value

    @field_validator("webhooks")
    @classmethod
    def _webhooks(cls, value: list[dict[str, Any]], info: ValidationInfo) -> list[dict[str, Any]]:
        prefix = webhook_secret_prefix(info.data.get("stack_name", "Stepline"))
        for index, entry in enumerate(value):
            if not isinstance(entry, dict):
                raise ValueError(f"webhooks[{index}]: expected a source configuration (an object)")
            for field in ("secret", "secret_id"):
                if field in entry:
                    raise ValueError(
                        f"webhooks[{index}].{field}: never in the stack's configuration; the stack makes the secret "
                        f"{prefix}{entry.get('source', '<source>')} for the provider's value"
                    )
        text = webhook_sources_json(value, prefix)
        try:
            deployed_sources(text)
        except ValueError as exc:
            raise ValueError(str(exc).replace("webhook_sources", "webhooks", 1)) from None
        if len(text.encode()) > WEBHOOKS_ENV_MAX_BYTES:
            raise ValueError(
                f"{len(text.encode())} bytes of configuration, over the {WEBHOOKS_ENV_MAX_BYTES} the API Lambda's "
                "environment can spare (4 KB in all); configure larger sources with `stepline webhooks set`"
            )
        return value

    @property
    def webhook_secret_prefix(self) -> str:
        """Where webhook secrets live in Secrets Manager; the API may read those and no others."""
        return webhook_secret_prefix(self.stack_name)

    def webhook_sources_json(self) -> str:
        return webhook_sources_json(self.webhooks, self.webhook_secret_prefix)

    def runtime_settings(self) -> dict[str, Any]:
        """The runtime settings (``stepline.settings.Settings`` fields) this configuration decides,
        which the stack puts in each Lambda's environment."""
        return {
            "max_runs_per_request": self.max_runs_per_request,
            "max_ops_per_reply": self.max_ops_per_reply,
            "max_steps_per_run": self.max_steps_per_run,
            "max_steps_by_function": self.max_steps_by_function,
            "retention_days": self.retention_days,
            "allow_private_app_urls": self.allow_private_app_urls,
            "allowed_app_origins": parse_app_origins(self.allowed_app_origins),
            "pin_app_versions": self.pin_app_versions,
            "webhook_sources": self.webhook_sources_json(),
            "webhook_secret_prefix": self.webhook_secret_prefix,
        }

    @property
    def retain(self) -> bool:
        return self.removal_policy == "retain"

    @property
    def schedule_group(self) -> str:
        """The timers' schedule group; the runtime names the cron group after it."""
        return f"{self.stack_name}{TIMERS_GROUP_SUFFIX}"

    @property
    def sweep_group(self) -> str:
        """The group of the stack's own sweep schedule: a group, so that Scheduler's role can be
        trusted by schedule group only (``aws:SourceArn``)."""
        return f"{self.stack_name}-sweep"

    @classmethod
    def load(cls, context: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> StackConfig:
        """Context wins over the environment, which wins over the defaults."""
        env = os.environ if environ is None else environ
        known = {context_key(name) for name in cls.model_fields}
        unknown = sorted(k for k in context if k.startswith(CONTEXT_PREFIX) and k not in known)
        if unknown:
            raise ValueError(
                f"Stepline stack configuration: unknown context {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            key = context_key(name)
            if context.get(key) is not None:
                values[name] = context[key]
            elif env.get(ENV_PREFIX + name.upper()) is not None:
                values[name] = env[ENV_PREFIX + name.upper()]
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{context_key(str(e['loc'][0]))} (or {ENV_PREFIX}{str(e['loc'][0]).upper()}): {e['msg']}"
                for e in exc.errors()
            )
            raise ValueError(f"Stepline stack configuration: {problems}") from None


def webhook_secret_prefix(stack_name: str) -> str:
    return f"{stack_name}/webhooks/"


def webhook_sources_json(webhooks: list[dict[str, Any]], prefix: str) -> str:
    """The runtime's ``webhook_sources``: each source with the secret the stack makes for it."""
    if not webhooks:
        return ""
    entries = [{**entry, "secret_id": prefix + str(entry.get("source"))} for entry in webhooks]
    return json.dumps(entries, separators=(",", ":"))


def context_key(field: str) -> str:
    """``api_memory_mb`` → ``stepline:apiMemoryMb``."""
    head, *rest = field.split("_")
    return CONTEXT_PREFIX + head + "".join(part.title() for part in rest)
