"""Calls an app behind a Lambda function URL with auth type ``AWS_IAM``: the POST the HTTP path
makes, signed with SigV4 (service ``lambda``, the URL's region) by the executor's own role.

The Inngest signature stays on the request, so the app checks both. Everything but the signing
is the HTTP caller's: its address policy, deadline, size cap and checkpoint streams. A function
URL answers for Lambda's own failures itself (403 not permitted, 413 too large, 429 throttled,
502 function error), so they take the HTTP path's retry rules as they are.
"""

from __future__ import annotations

from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from stepline.engine.app_targets import target_of
from stepline.engine.http import CallFailed, HttpResponse, Sender

SERVICE = "lambda"


def signed_headers(
    credentials: Any, region: str, method: str, url: str, body: bytes, headers: dict[str, str]
) -> dict[str, str]:
    """``headers`` plus SigV4's (``Authorization``, ``X-Amz-Date``, ``X-Amz-Security-Token``
    for temporary credentials, ``X-Amz-Content-SHA256``): exactly what is sent."""
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
    # The payload's hash is sent as well as signed: function URLs want it for signed bodies.
    request.headers["X-Amz-Content-SHA256"] = SigV4Auth(credentials, SERVICE, region).payload(request)
    SigV4Auth(credentials, SERVICE, region).add_auth(request)
    return dict(request.headers.items())


class SigV4UrlCaller:
    """``HttpCaller`` for ``AWS_IAM`` function URLs. ``credentials`` returns the role's current
    credentials (botocore refreshes them as they near expiry)."""

    def __init__(self, http: Sender, credentials: Any) -> None:
        self.http = http
        self._credentials = credentials

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> HttpResponse:
        return self.send("POST", url, body, headers, timeout_s)

    def send(self, method: str, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> HttpResponse:
        region = target_of(url).region
        if region is None:
            raise CallFailed(f"{url} is not a Lambda function URL")
        credentials = self._credentials()
        if credentials is None:
            raise CallFailed("no AWS credentials to sign the call with")
        frozen = credentials.get_frozen_credentials() if hasattr(credentials, "get_frozen_credentials") else credentials
        return self.http.send(method, url, body, signed_headers(frozen, region, method, url, body, headers), timeout_s)
