"""Lambda's Invoke, served in-process: a real boto3 Lambda client whose requests are answered by
running the app's ``lambda_handler`` right here (moto cannot run Lambda code without Docker).

Everything up to the wire is real: botocore serializes the Invoke, and parses the answer and its
errors, exactly as against AWS. Each function has numbered versions and aliases; invoking a
version that is not there is ``ResourceNotFoundException``, as on AWS.
"""

from __future__ import annotations

import json
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import boto3
from botocore.awsrequest import AWSResponse
from moto.core.botocore_stubber import MockRawResponse

Handler = Callable[[dict[str, Any], Any], Any]
REGION = "eu-west-1"
ACCOUNT = "123456789012"


def arn(name: str, qualifier: str | None = None) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}" + (f":{qualifier}" if qualifier else "")


@dataclass
class Function:
    versions: dict[str, Handler] = field(default_factory=dict)  # "1", "2", ...; "$LATEST"
    aliases: dict[str, str] = field(default_factory=dict)  # alias -> version


@dataclass
class Invoked:
    function_name: str  # as sent: the qualified or unqualified ARN
    invocation_type: str
    executed_version: str
    event: dict[str, Any]


class LambdaService:
    def __init__(self) -> None:
        self.functions: dict[str, Function] = {}
        self.invoked: list[Invoked] = []
        self.lock = threading.Lock()
        self.client = boto3.client(
            "lambda", region_name=REGION, aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret"
        )
        self.client.meta.events.register_first("before-send.lambda.Invoke", self._answer)

    def publish(self, name: str, handler: Handler, alias: str = "live") -> str:
        """A new version of ``name`` running ``handler``, the alias moved to it; its number."""
        fn = self.functions.setdefault(name, Function())
        version = str(len([v for v in fn.versions if v != "$LATEST"]) + 1)
        fn.versions[version] = handler
        fn.versions["$LATEST"] = handler
        fn.aliases[alias] = version
        return version

    def delete_version(self, name: str, version: str) -> None:
        del self.functions[name].versions[version]

    def clients(self, region: str) -> Any:
        assert region == REGION, region
        return self.client

    def _answer(self, request: Any, **_: Any) -> AWSResponse:
        parts = urlsplit(request.url)
        # /2015-03-31/functions/<FunctionName>/invocations
        name_sent = unquote(parts.path.split("/functions/", 1)[1].rsplit("/invocations", 1)[0])
        qualifier = (parse_qs(parts.query).get("Qualifier") or [None])[0]
        tail = name_sent.split(":function:", 1)[-1]
        name, _, in_arn = tail.partition(":")
        qualifier = qualifier or in_arn or "$LATEST"
        fn = self.functions.get(name)
        version = fn.aliases.get(qualifier, qualifier) if fn else qualifier
        if fn is None or version not in fn.versions:
            return _error(request, 404, "ResourceNotFoundException", f"Function not found: {name_sent}")
        event = json.loads(request.body)
        with self.lock:
            self.invoked.append(Invoked(name_sent, _text(request.headers.get("X-Amz-Invocation-Type")), version, event))
        headers = {"X-Amz-Executed-Version": version, "Content-Type": "application/json"}
        try:
            result = fn.versions[version](event, None)
        except BaseException as exc:  # noqa: BLE001 - a crashing function (exit included), as Lambda reports one
            headers["X-Amz-Function-Error"] = "Unhandled"
            result = {
                "errorType": type(exc).__name__,
                "errorMessage": str(exc),
                "stackTrace": traceback.format_exception(exc),
            }
        return AWSResponse(request.url, 200, headers, MockRawResponse(json.dumps(result).encode()))  # type: ignore[arg-type]


def _text(value: str | bytes | None) -> str:
    return value.decode() if isinstance(value, bytes) else (value or "")


def _error(request: Any, status: int, code: str, message: str) -> AWSResponse:
    body = json.dumps({"Type": "User", "message": message}).encode()
    headers = {"x-amzn-ErrorType": code, "Content-Type": "application/json"}
    return AWSResponse(request.url, status, headers, MockRawResponse(body))  # type: ignore[arg-type]
