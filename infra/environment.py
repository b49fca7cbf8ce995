"""The environment of each Lambda, in one place.

The ``STEPLINE_*`` variables are ``stepline.settings.Settings.to_env()`` of the settings the
stack decides, so their names cannot drift from what the runtime reads; the ``POWERTOOLS_*``
ones configure powertools' logger, metrics and tracer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stepline.engine.payload_policy import DEPLOYED_MAX_RUN_STATE_BYTES
from stepline.settings import Settings

METRICS_NAMESPACE = "Stepline"
DEPLOYED_MODE = "cloud"


@dataclass(frozen=True)
class Resources:
    """Names and addresses the stack hands to the runtime (CDK tokens at synth time)."""

    table_name: str
    queue_url: str
    queue_arn: str
    dlq_url: str
    schedule_group: str
    scheduler_role_arn: str
    payload_bucket: str
    signing_key_secret_id: str
    event_keys_secret_id: str
    operator_key_secret_id: str = ""
    keys_revision: str = ""
    # Runtime settings the stack's configuration decides (limits, retention), by Settings field.
    runtime: dict[str, Any] = field(default_factory=dict)


def timing_settings() -> Settings:
    """The settings every deployed Lambda shares, the resources aside. Their timings decide the
    executor's timeout and the queue's visibility timeout, before the resources exist. A run's
    state is capped at what one API Lambda response can serve to an SDK that fetches it."""
    return Settings(mode=DEPLOYED_MODE, max_run_state_bytes=DEPLOYED_MAX_RUN_STATE_BYTES)


def deployed_settings(resources: Resources, *, role: str) -> Settings:
    """The settings a Lambda in ``role`` ("api" or "executor") runs with.

    The executor signs calls but never checks event keys or the operator key, so only the API
    gets those secrets.
    """
    settings = timing_settings().model_copy(
        update=dict(
            **resources.runtime,
            table_name=resources.table_name,
            queue_url=resources.queue_url,
            queue_arn=resources.queue_arn,
            dlq_url=resources.dlq_url,
            schedule_group=resources.schedule_group,
            scheduler_role_arn=resources.scheduler_role_arn,
            payload_bucket=resources.payload_bucket,
            signing_key_secret_id=resources.signing_key_secret_id,
            event_keys_secret_id=resources.event_keys_secret_id if role == "api" else None,
            operator_key_secret_id=(resources.operator_key_secret_id or None) if role == "api" else None,
            keys_revision=resources.keys_revision or None,
        )
    )
    if role != "api":
        # Only the API receives webhooks; the executor's environment need not carry them.
        settings = settings.model_copy(update={"webhook_sources": "", "webhook_secret_prefix": ""})
    return settings


def powertools_environment(service: str) -> dict[str, str]:
    return {
        "POWERTOOLS_SERVICE_NAME": service,
        "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        "POWERTOOLS_LOG_LEVEL": "INFO",
        # Events and responses carry user payloads and keys: keep them out of logs and traces.
        "POWERTOOLS_LOGGER_LOG_EVENT": "false",
        "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
        "POWERTOOLS_TRACER_CAPTURE_ERROR": "true",
    }


def lambda_environment(resources: Resources, *, role: str) -> dict[str, str]:
    """Everything a Lambda in ``role`` gets as environment variables."""
    env = deployed_settings(resources, role=role).to_env()
    # Keys never travel in the environment: the secrets hold them (an empty list is all that
    # would be written here anyway).
    for name in (
        "STEPLINE_EVENT_KEYS",
        "STEPLINE_SIGNING_KEY",
        "STEPLINE_SIGNING_KEY_FALLBACK",
        "STEPLINE_OPERATOR_KEY",
    ):
        env.pop(name, None)
    env.update(powertools_environment(f"stepline-{role}"))
    return env
