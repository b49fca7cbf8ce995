"""The stack, synthesized once per test session (a synth costs seconds), with every AWS call
refused while it runs: synth must make none."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")


@dataclass
class Synthesized:
    app: Any
    stack: Any
    template: dict[str, Any]
    outdir: Path
    aws_calls: list[str]

    def resources(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.template["Resources"].items() if v["Type"] == resource_type}

    def one(self, resource_type: str) -> tuple[str, dict[str, Any]]:
        found = self.resources(resource_type)
        assert len(found) == 1, f"expected one {resource_type}, found {sorted(found)}"
        return next(iter(found.items()))


@contextmanager
def no_aws_calls(calls: list[str]) -> Iterator[None]:
    """Record, and refuse, any botocore request made inside."""
    import botocore.client

    original = botocore.client.BaseClient._make_api_call

    def refuse(self: Any, operation_name: str, api_params: Any) -> Any:
        calls.append(f"{self.meta.service_model.service_name}.{operation_name}")
        raise AssertionError(f"AWS call during synth: {operation_name}")

    botocore.client.BaseClient._make_api_call = refuse  # type: ignore[method-assign]
    try:
        yield
    finally:
        botocore.client.BaseClient._make_api_call = original  # type: ignore[method-assign]


def synthesize(outdir: Path, context: dict[str, Any] | None = None, *, check: bool = True) -> Synthesized:
    """In-process synths skip CDK's built-in template validation (most of a synth's time);
    test_config runs app.py once with it, as the CLI does."""
    from infra.app import build_app

    calls: list[str] = []
    with no_aws_calls(calls):
        app, stack = build_app(context, outdir=str(outdir), check=check, builtin_validation=False)
        assembly = app.synth()
    template = assembly.get_stack_artifact(stack.artifact_id).template
    return Synthesized(app, stack, template, outdir, calls)


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory) -> Synthesized:
    """The stack as `npx --yes aws-cdk synth` makes it with cdk.json alone, cdk-nag included."""
    return synthesize(tmp_path_factory.mktemp("cdk.out"))


# The deployed webhook source's transform: a Stripe event becomes the deployed app's event.
BILLING_CEL = '{"name": "deploy/check", "data": {"n": event.body.data.object.n}}'
EXISTING_KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


@pytest.fixture(scope="session")
def variant(tmp_path_factory) -> Synthesized:
    """A deployment choosing what the defaults do not: destroy on delete, existing secrets and an
    existing KMS key, a keys revision, an alarm topic, other limits and throttles, no reserved
    concurrency, no point-in-time recovery."""
    context = {
        "stepline:stackName": "SteplineDev",
        "stepline:removalPolicy": "destroy",
        "stepline:signingKeySecret": "shared/stepline-signing",
        "stepline:eventKeysSecret": "arn:aws:secretsmanager:us-east-1:123456789012:secret:shared/events-AbCdEf",
        "stepline:operatorKeySecret": "shared/stepline-operator",
        "stepline:keysRevision": "7",
        "stepline:alarmTopicArn": "arn:aws:sns:us-east-1:123456789012:ops",
        "stepline:executorMaxConcurrency": "5",
        "stepline:apiReservedConcurrency": "0",
        "stepline:apiMemoryMb": "1024",
        "stepline:logRetentionDays": "7",
        "stepline:payloadExpirationDays": "400",
        "stepline:kmsKey": EXISTING_KEY,
        "stepline:pointInTimeRecoveryDays": "0",
        "stepline:eventApiRateLimit": "50",
        "stepline:eventApiBurstLimit": "60",
        "stepline:sdkRateLimit": "70",
        "stepline:sdkBurstLimit": "80",
        "stepline:operatorRateLimit": "3",
        "stepline:operatorBurstLimit": "4",
        "stepline:maxRunsPerRequest": "100",
        "stepline:maxOpsPerReply": "50",
        "stepline:maxStepsPerRun": "200",
        "stepline:maxStepsByFunction": "billing-invoice=5000",
        "stepline:allowedAppOrigins": "https://apps.example.com, http://10.0.0.5:8080/",
    }
    return synthesize(tmp_path_factory.mktemp("cdk.out.variant"), context)


@pytest.fixture(scope="session")
def protected(tmp_path_factory) -> Synthesized:
    """The data options on: a customer managed key made by the stack, a 30-day retention and a
    7-day point-in-time recovery window (also what tests/infra deploys into moto)."""
    context = {
        "stepline:kmsKey": "create",
        "stepline:retentionDays": "30",
        "stepline:pointInTimeRecoveryDays": "7",
        # The deployed test app listens on this machine's loopback.
        "stepline:allowPrivateAppUrls": "true",
        # A verified webhook source, deployed with its secret (tests/infra/test_deploy_moto.py).
        "stepline:webhooks": [{"source": "billing", "provider": "stripe", "transform": {"cel": BILLING_CEL}}],
    }
    return synthesize(tmp_path_factory.mktemp("cdk.out.protected"), context)
