"""The executor's caller on AWS: plain HTTP, SigV4-signed function URLs and direct invokes, each
app by its registered URL (``stepline.engine.app_targets``), all with the executor's own role."""

from __future__ import annotations

import threading
from typing import Any

import boto3

from stepline.aws.lambda_invoke import LambdaInvokeCaller, lambda_client
from stepline.aws.sigv4_url import SigV4UrlCaller
from stepline.engine.app_targets import RoutingCaller
from stepline.engine.http import PooledHttpCaller
from stepline.engine.outbound import AddressPolicy
from stepline.settings import Settings


class _ClientsByRegion:
    """One Lambda client per region, made on first use (clients are thread-safe; making one is not)."""

    def __init__(self, session: Any, timeout_s: float) -> None:
        self._session = session
        self._timeout_s = timeout_s
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __call__(self, region: str) -> Any:
        with self._lock:
            if region not in self._clients:
                self._clients[region] = lambda_client(self._session, region, self._timeout_s)
            return self._clients[region]


def app_caller(settings: Settings, session: Any | None = None, http: PooledHttpCaller | None = None) -> RoutingCaller:
    session = session or boto3.session.Session()
    http = http or PooledHttpCaller(policy=AddressPolicy.from_settings(settings))
    return RoutingCaller(
        http,
        lambda_url=SigV4UrlCaller(http, session.get_credentials),
        lambda_invoke=LambdaInvokeCaller(_ClientsByRegion(session, settings.step_timeout_s)),
    )
