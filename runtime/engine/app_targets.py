"""What an app's registered URL says about how to reach it, and the caller that goes there.

An app is reached one of three ways (docs/deploy.md):

* ``HTTP``: a POST to its URL, checked by the signing key alone (apps anywhere).
* ``LAMBDA_URL``: a Lambda function URL (``https://<id>.lambda-url.<region>.on.aws/``) with auth
  type ``AWS_IAM``: the same POST, signed with SigV4 by the executor's role.
* ``LAMBDA_INVOKE``: a Lambda function in the same account, called with ``lambda:Invoke``
  directly, the request carried as a function-URL event so the app's one ``lambda_handler``
  serves both. Nothing public is needed.

An SDK registers the URL its request arrived at, so an invoked function is given a URL of its
own in the event: ``https://<function name>.lambda.invalid/<function ARN>``. ``.invalid`` is
reserved (RFC 2606) and never resolves, so such a URL can never be called over the network by
mistake; the function's name as host gives each function its own origin (a sync may not move an
app between origins without ``force``); the ARN in the path, qualified or not, is what is invoked.

A run pinned to a Lambda version (``stepline.engine.pinning``) adds ``PIN_PARAM`` to the call's
URL; the invoke caller invokes that version, strips the parameter before the app sees the request,
and falls back to the registered ARN when the version is gone, saying so in ``H_PIN_GONE``.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from stepline.engine.http import HttpCaller, HttpResponse, Sender
from stepline.protocol.urls import get_query_param, strip_query_param

# The reserved host suffix of an invoked function's URL.
INVOKE_HOST_SUFFIX = ".lambda.invalid"
# A call URL's parameter naming the Lambda version the run is pinned to; never reaches the app.
PIN_PARAM = "stepline_pin"
# Response headers the invoke caller adds: the version that ran (Lambda's ExecutedVersion), and
# the pinned version that was gone when it was asked for.
H_EXECUTED_VERSION = "x-stepline-executed-version"
H_PIN_GONE = "x-stepline-pin-gone"

# arn:<partition>:lambda:<region>:<account>:function:<name>[:<version or alias>]
_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):lambda:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):function:"
    r"(?P<name>[A-Za-z0-9_-]{1,64})(?::(?P<qualifier>\$LATEST|[A-Za-z0-9_-]{1,128}))?$"
)
_FUNCTION_URL_HOST = re.compile(r"^[a-z0-9]+\.lambda-url\.(?P<region>[a-z0-9-]+)\.on\.aws$")


class TargetKind(enum.Enum):
    HTTP = "http"
    LAMBDA_URL = "lambda-url"
    LAMBDA_INVOKE = "lambda-invoke"


@dataclass(frozen=True)
class FunctionArn:
    """A Lambda function's ARN, split; ``qualifier`` is a version, an alias or None."""

    partition: str
    region: str
    account: str
    name: str
    qualifier: str | None = None

    @classmethod
    def parse(cls, text: str) -> FunctionArn:
        match = _ARN.match(text.strip())
        if match is None:
            shape = "arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]"
            raise ValueError(f"{text!r} is not a Lambda function ARN ({shape})")
        return cls(**match.groupdict())

    @property
    def unqualified(self) -> str:
        return f"arn:{self.partition}:lambda:{self.region}:{self.account}:function:{self.name}"

    def __str__(self) -> str:
        return self.unqualified + (f":{self.qualifier}" if self.qualifier else "")

    def with_qualifier(self, qualifier: str | None) -> FunctionArn:
        return FunctionArn(self.partition, self.region, self.account, self.name, qualifier)

    @property
    def serve_url(self) -> str:
        """The URL an app invoked at this ARN registers from (the module docstring)."""
        return f"https://{self.name.lower()}{INVOKE_HOST_SUFFIX}/{self}"


@dataclass(frozen=True)
class AppTarget:
    kind: TargetKind
    url: str
    arn: FunctionArn | None = None  # LAMBDA_INVOKE only
    region: str | None = None  # LAMBDA_URL and LAMBDA_INVOKE


def is_function_arn(text: str) -> bool:
    return _ARN.match(text.strip()) is not None


def serve_url_for(text: str) -> str:
    """What to sync: a function ARN becomes its invoke URL; any other URL is itself."""
    return FunctionArn.parse(text).serve_url if is_function_arn(text) else text


def target_of(url: str) -> AppTarget:
    """How ``url`` (a registered or call URL) is reached. ValueError for an invoke URL whose path
    is not a function ARN."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if host.endswith(INVOKE_HOST_SUFFIX):
        arn = FunctionArn.parse(unquote(parts.path.lstrip("/")))
        return AppTarget(TargetKind.LAMBDA_INVOKE, url, arn, arn.region)
    match = _FUNCTION_URL_HOST.match(host)
    if match is not None and parts.scheme == "https":
        return AppTarget(TargetKind.LAMBDA_URL, url, region=match["region"])
    return AppTarget(TargetKind.HTTP, url)


def invoked_arn(url: str) -> tuple[FunctionArn, str | None]:
    """For an invoke call URL: the ARN to invoke (the pinned version when the URL carries one)
    and the pin, or None."""
    target = target_of(url)
    if target.arn is None:
        raise ValueError(f"{url!r} is not a Lambda invoke URL")
    pin = get_query_param(url, PIN_PARAM)
    return (target.arn.with_qualifier(pin) if pin else target.arn), pin


def without_pin(url: str) -> str:
    return strip_query_param(url, PIN_PARAM)


class RoutingCaller:
    """The executor's one caller: each call goes to the adapter for its URL's kind. A kind with
    no adapter (the Lambda ones, where no AWS credentials are wired, as in `stepline dev`) is
    called over plain HTTP, which for an invoke URL fails at once: the name never resolves."""

    def __init__(
        self,
        http: HttpCaller,
        lambda_url: Sender | None = None,
        lambda_invoke: Sender | None = None,
    ) -> None:
        self.http = http
        self.by_kind: dict[TargetKind, HttpCaller] = {TargetKind.HTTP: http}
        # The private ones, which also carry an app's sync (a PUT) where nothing public serves it.
        self.private: dict[TargetKind, Sender] = {}
        if lambda_url is not None:
            self.private[TargetKind.LAMBDA_URL] = lambda_url
        if lambda_invoke is not None:
            self.private[TargetKind.LAMBDA_INVOKE] = lambda_invoke

    def caller_for(self, url: str) -> HttpCaller:
        try:
            kind = target_of(url).kind
        except ValueError:
            kind = TargetKind.HTTP
        private = self.private.get(kind)
        return self.http if private is None else _Posting(private)

    def private_sender(self, url: str) -> Sender | None:
        """The private caller for ``url``; None for a plain HTTP one (or one nothing is wired for)."""
        try:
            return self.private.get(target_of(url).kind)
        except ValueError:
            return None

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> HttpResponse:
        return self.caller_for(url).post(url, body, headers, timeout_s)


@dataclass(frozen=True)
class _Posting:
    sender: Sender

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> HttpResponse:
        return self.sender.send("POST", url, body, headers, timeout_s)
