"""Calls to an AWS_IAM function URL carry SigV4 headers for the executor's role, over exactly the
bytes sent; the Inngest signature is sent (and signed) too."""

from __future__ import annotations

import hashlib

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from stepline.aws.sigv4_url import SigV4UrlCaller
from stepline.engine.app_targets import RoutingCaller
from stepline.engine.http import HttpResponse

URL = "https://abcdefghijklmnop.lambda-url.eu-west-1.on.aws/?fnId=app-fn&stepId=step"
CREDS = Credentials("ASIAEXAMPLE", "secret-key", token="session-token")


class Recorder:
    """The HTTP leg, recorded: what would go on the wire."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, bytes, dict[str, str]]] = []

    def send(self, method, url, body, headers, timeout_s):
        self.sent.append((method, url, body, headers))
        return HttpResponse(206, b"[]", {})

    def post(self, url, body, headers, timeout_s):
        return self.send("POST", url, body, headers, timeout_s)


def _verify(method: str, url: str, body: bytes, headers: dict[str, str]) -> dict[str, str]:
    """Recompute the signature from what was sent; the Authorization header's parts."""
    auth = headers["Authorization"]
    assert auth.startswith("AWS4-HMAC-SHA256 ")
    parts = dict(p.strip().split("=", 1) for p in auth[len("AWS4-HMAC-SHA256 ") :].split(","))
    request = AWSRequest(
        method=method, url=url, data=body, headers={k: v for k, v in headers.items() if k != "Authorization"}
    )
    request.context["timestamp"] = headers["X-Amz-Date"]
    signer = SigV4Auth(CREDS, "lambda", "eu-west-1")
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    assert parts["Signature"] == expected
    return parts


def test_a_call_is_signed_for_lambda_in_the_urls_region_over_the_body_sent():
    http = Recorder()
    caller = SigV4UrlCaller(http, lambda: CREDS)
    body = b'{"event":{"name":"a"}}'
    caller.post(URL, body, {"Content-Type": "application/json", "X-Inngest-Signature": "t=1&s=f00"}, 30)
    [(method, url, sent_body, headers)] = http.sent
    assert (method, url, sent_body) == ("POST", URL, body)
    parts = _verify(method, url, sent_body, headers)
    scope = parts["Credential"].split("/")
    assert scope[0] == "ASIAEXAMPLE" and scope[2:] == ["eu-west-1", "lambda", "aws4_request"]
    assert {"host", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256", "x-inngest-signature"} <= set(
        parts["SignedHeaders"].split(";")
    )
    assert headers["X-Amz-Security-Token"] == "session-token"
    assert headers["X-Amz-Content-SHA256"] == hashlib.sha256(body).hexdigest()
    assert headers["X-Inngest-Signature"] == "t=1&s=f00"


def test_a_sync_put_is_signed_the_same_way_and_other_urls_are_never_signed():
    http = Recorder()
    router = RoutingCaller(http, lambda_url=SigV4UrlCaller(http, lambda: CREDS))  # type: ignore[arg-type]
    sender = router.private_sender(URL)
    assert sender is not None
    sender.send("PUT", URL, b"", {"X-Inngest-Signature": "t=1&s=0"}, 30)
    _verify("PUT", URL, b"", http.sent[-1][3])
    router.post("https://example.com/api/inngest", b"{}", {"X-Inngest-Signature": "t=1&s=0"}, 30)
    assert "Authorization" not in http.sent[-1][3]
