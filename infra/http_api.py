"""The HTTP API: API Gateway (HTTP API, payload v2) in front of the API Lambda."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import nag
from infra.functions import LambdaCode, SteplineFunction, retention

API_HANDLER = "stepline.handlers.api.handler"
# API Gateway gives up on an integration after 30 s; the Lambda stops at the same point.
API_TIMEOUT = Duration.seconds(29)

GET, POST, DELETE = apigw.HttpMethod.GET, apigw.HttpMethod.POST, apigw.HttpMethod.DELETE


class RouteGroup(str, Enum):
    """Who calls a route, which decides its throttle: a flood in one group (bad event keys, a
    stuck operator script) cannot take the rate the others need."""

    EVENT_API = "event-api"  # senders, by event key
    SDK = "sdk"  # apps through the SDKs (sync, use_api) and the REST API's reads
    OPERATOR = "operator"  # the routes that steer runs (operator key: stepline.api.auth)
    PUBLIC = "public"  # the dashboard's files, /health, /openapi.json: the stage's default


@dataclass(frozen=True)
class Throttle:
    rate: int
    burst: int


# The routes runtime/api serves. Anything else never reaches the Lambda (API Gateway answers
# 404), which keeps scanners off the bill. API Gateway picks the most specific route, so the
# operator routes inside /v1 have routes of their own (every POST and DELETE there is one, and
# GET /v1/dead-letters); tests/infra holds them to stepline.api.auth.OPERATOR_ROUTES.
ROUTES: list[tuple[str, list[apigw.HttpMethod], RouteGroup]] = [
    ("/e/{key}", [POST], RouteGroup.EVENT_API),  # Event API
    ("/e", [POST], RouteGroup.EVENT_API),  # the Event API without a key: refused with a 401 that says so
    ("/webhooks/{source}", [POST], RouteGroup.EVENT_API),  # providers' webhooks, by their signatures
    ("/fn/register", [POST], RouteGroup.SDK),  # SDK sync
    ("/v0/{proxy+}", [GET], RouteGroup.SDK),  # large run payloads (SDK use_api)
    ("/v1/checkpoint/{run_id}/async", [POST], RouteGroup.SDK),  # steps stored from inside a call
    ("/v1/signals", [POST], RouteGroup.SDK),  # step.sendSignal and inngest.sendSignal
    ("/v1/{proxy+}", [GET], RouteGroup.SDK),  # the REST API's reads
    ("/v1/{proxy+}", [POST, DELETE], RouteGroup.OPERATOR),  # cancel, replay, erase, sweep, ...
    ("/v1/dead-letters", [GET], RouteGroup.OPERATOR),  # dead letters carry whole messages
    ("/v1/webhooks", [GET], RouteGroup.OPERATOR),  # webhook sources: the operators' configuration
    # Deployed, metrics are CloudWatch's: the route answers 404 saying so (stepline dev/start serve it).
    ("/metrics", [GET], RouteGroup.OPERATOR),
    ("/health", [GET], RouteGroup.PUBLIC),
    ("/openapi.json", [GET], RouteGroup.PUBLIC),  # the REST API's description
    ("/", [GET], RouteGroup.PUBLIC),  # the dashboard: a page and its static files, which hold no data
    ("/static/{name}", [GET], RouteGroup.PUBLIC),
]


def route_keys(group: RouteGroup) -> list[str]:
    return [f"{method.value} {path}" for path, methods, g in ROUTES if g == group for method in methods]


# One JSON line per request. The route key, never the path: the path of /e/{key} holds the key.
ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "time": "$context.requestTime",
        "ip": "$context.identity.sourceIp",
        "route": "$context.routeKey",
        "status": "$context.status",
        "latencyMs": "$context.responseLatency",
        "integrationLatencyMs": "$context.integrationLatency",
        "responseBytes": "$context.responseLength",
        "integrationError": "$context.integrationErrorMessage",
    },
    separators=(",", ":"),
)


class HttpApi(Construct):
    """The API Lambda (Event API, sync, REST API) and the HTTP API routing to it, throttled and
    with access logs."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        code: LambdaCode,
        environment: dict[str, str],
        memory_mb: int,
        default_throttle: Throttle,
        throttles: dict[RouteGroup, Throttle],
        log_retention_days: int,
        log_group_prefix: str,
        key: kms.IKey | None = None,
        reserved_concurrency: int | None = None,
    ) -> None:
        super().__init__(scope, id)
        self.handler = SteplineFunction(
            self,
            "Handler",
            code=code,
            handler=API_HANDLER,
            description="Stepline API: Event API, SDK sync, REST API",
            memory_mb=memory_mb,
            timeout=API_TIMEOUT,
            environment=environment,
            log_retention_days=log_retention_days,
            log_group_name=f"{log_group_prefix}api",
            key=key,
            reserved_concurrency=reserved_concurrency,
        )
        self.api = apigw.HttpApi(
            self,
            "Api",
            description="Stepline: Event API, SDK sync and REST API",
            create_default_stage=False,
        )
        integration = integrations.HttpLambdaIntegration(
            "Lambda", self.handler.function, payload_format_version=apigw.PayloadFormatVersion.VERSION_2_0
        )
        for path, methods, _group in ROUTES:
            self.api.add_routes(path=path, methods=methods, integration=integration)
        self.access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            log_group_name=f"{log_group_prefix}access",
            encryption_key=key,
            retention=retention(log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.stage = apigw.HttpStage(
            self,
            "Stage",
            http_api=self.api,
            stage_name="$default",
            auto_deploy=True,
            throttle=apigw.ThrottleSettings(rate_limit=default_throttle.rate, burst_limit=default_throttle.burst),
        )
        stage = self.stage.node.default_child
        if not isinstance(stage, apigw.CfnStage):
            raise TypeError("an HttpStage is one CfnStage")
        stage.access_log_settings = apigw.CfnStage.AccessLogSettingsProperty(
            destination_arn=self.access_logs.log_group_arn, format=ACCESS_LOG_FORMAT
        )
        # Each route of a group gets the group's rate and burst (API Gateway throttles per route).
        stage.route_settings = {
            route_key: {"ThrottlingRateLimit": throttle.rate, "ThrottlingBurstLimit": throttle.burst}
            for group, throttle in throttles.items()
            for route_key in route_keys(group)
        }
        nag.suppress(
            self.api,
            "AwsSolutions-APIG4",
            "Every route that reads or changes state authenticates in the API Lambda, as the "
            "Inngest protocol defines: /e/{key} by event key, /fn/register and the REST API by "
            "the signing key's or the operator key's bearer hash, for which API Gateway has no "
            "authorizer type. The dashboard's files, /openapi.json and /health hold no data and "
            "are public.",
        )

    @property
    def url(self) -> str:
        return self.stage.url
