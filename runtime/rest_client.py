"""The REST API as the terminal's commands use it (``stepline.cli_ops``, ``stepline.webhooks.cli``):
JSON in and out, the key sent as its hash, and every failure one ``ApiFailure`` whose message says
what to do."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from stepline.protocol.errors import ProtocolError
from stepline.protocol.signing import hash_signing_key


class ApiFailure(Exception):
    """The API answered with an error, or could not be reached."""


class Client:
    def __init__(self, url: str, key: str | None = None, timeout_s: float = 30.0) -> None:
        """``key``: the operator key, or the signing key for reading only (both hex, sent hashed)."""
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self.headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if key:
            try:
                self.headers["Authorization"] = f"Bearer {hash_signing_key(key)}"
            except ProtocolError as exc:
                raise ApiFailure(str(exc)) from None

    def call(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v not in (None, "")})
        url = f"{self.url}{path}" + (f"?{query}" if query else "")
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method, headers=self.headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as resp:
                text = resp.read()
        except urllib.error.HTTPError as err:
            text = err.read()
            hint = " (pass --operator-key or set STEPLINE_OPERATOR_KEY)" if err.code in (401, 403) else ""
            try:
                message = json.loads(text)["error"]
            except (ValueError, KeyError, TypeError):
                # Not this API's error shape: some other server answered.
                message = " ".join(text.decode(errors="replace").split())[:120]
                hint = f" (is {self.url} a Stepline API?)"
            raise ApiFailure(f"{method} {path}: {err.code} {message}{hint}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ApiFailure(f"cannot reach {self.url} ({reason}); is `stepline dev` running?") from None
        try:
            return json.loads(text) if text else None
        except ValueError:
            raise ApiFailure(f"{method} {path}: the answer is not JSON; is {self.url} a Stepline API?") from None
