"""The HTTP API: API Gateway (HTTP API, payload v2) in front of the API Lambda."""

from __future__ import annotations

import json

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import nag
from infra.functions import LambdaCode, SteplineFunction, retention

API_HANDLER = "stepline.handlers.api.handler"
# API Gateway gives up on an integration after 30 s; the Lambda stops at the same point.
API_TIMEOUT = Duration.seconds(29)

GET, POST, DELETE = apigw.HttpMethod.GET, apigw.HttpMethod.POST, apigw.HttpMethod.DELETE
# The routes runtime/api serves. Anything else never reaches the Lambda (API Gateway answers
# 404), which keeps scanners off the bill.
ROUTES: list[tuple[str, list[apigw.HttpMethod]]] = [
    ("/e/{key}", [POST]),  # Event API
    ("/e", [POST]),  # the Event API without a key: refused with a 401 that says so
    ("/fn/register", [POST]),  # SDK sync
    ("/v0/{proxy+}", [GET]),  # large run payloads (SDK use_api)
    ("/v1/{proxy+}", [GET, POST, DELETE]),  # REST API
    ("/health", [GET]),
    ("/openapi.json", [GET]),  # the REST API's description
    ("/", [GET]),  # the dashboard: a page and its static files, which hold no data
    ("/static/{name}", [GET]),
]

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
        rate_limit: int,
        burst_limit: int,
        log_retention_days: int,
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
        for path, methods in ROUTES:
            self.api.add_routes(path=path, methods=methods, integration=integration)
        self.access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=retention(log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.stage = apigw.HttpStage(
            self,
            "Stage",
            http_api=self.api,
            stage_name="$default",
            auto_deploy=True,
            throttle=apigw.ThrottleSettings(rate_limit=rate_limit, burst_limit=burst_limit),
        )
        stage = self.stage.node.default_child
        stage.access_log_settings = apigw.CfnStage.AccessLogSettingsProperty(  # type: ignore[union-attr]
            destination_arn=self.access_logs.log_group_arn, format=ACCESS_LOG_FORMAT
        )
        nag.suppress(
            self.api,
            "AwsSolutions-APIG4",
            "Every route that reads or changes state authenticates in the API Lambda, as the "
            "Inngest protocol defines: /e/{key} by event key, /fn/register and the REST API by "
            "the signing key's bearer hash, for which API Gateway has no authorizer type. The "
            "dashboard's files, /openapi.json and /health hold no data and are public.",
        )

    @property
    def url(self) -> str:
        return self.stage.url
