"""The vocabulary of webhooks: providers, a source's configuration, a delivery, why one is refused.

A source's configuration is checked here, whichever door it came through (REST, CLI, the
deployment's ``stepline:webhooks``): ``SourceConfigError`` names the field that is wrong.
"""

from __future__ import annotations

import json as json_module
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from stepline.protocol.expressions import ExpressionError, compile_expression
from stepline.webhooks.paths import parse_path

# A source's name is a path segment (``/webhooks/{source}``) and part of event ids.
SOURCE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
DAY_S = 24 * 3600


class Provider(str, Enum):
    STRIPE = "stripe"  # Stripe-Signature: t=<unix s>,v1=<hex HMAC-SHA256 of "t.body">
    GITHUB = "github"  # X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>
    STANDARD = "standard"  # Standard Webhooks / Svix: webhook-id, webhook-timestamp, webhook-signature
    SHOPIFY = "shopify"  # X-Shopify-Hmac-Sha256: base64 HMAC-SHA256 of the body
    HMAC = "hmac"  # a header of our choosing holding HMAC-SHA256 of the body (or "timestamp.body")


# The replay window each provider gets unless the source says otherwise. Where the signature
# covers a timestamp (Stripe, Standard Webhooks, the generic scheme with a timestamp header) it is
# how far that timestamp may be from now: both providers' own libraries use five minutes. GitHub
# and Shopify sign the body alone, so the window is how long a signature stays bound to its first
# delivery id: GitHub lets a delivery be redelivered for 3 days, Shopify retries for 4 hours.
DEFAULT_REPLAY_WINDOW_S: dict[Provider, int] = {
    Provider.STRIPE: 300,
    Provider.STANDARD: 300,
    Provider.HMAC: 300,
    Provider.GITHUB: 3 * DAY_S,
    Provider.SHOPIFY: DAY_S,
}
MAX_REPLAY_WINDOW_S = 7 * DAY_S


class Encoding(str, Enum):
    HEX = "hex"
    BASE64 = "base64"


class HmacScheme(BaseModel):
    """Where the generic scheme finds its parts. With ``timestamp_header`` the signed content is
    ``<timestamp>.<body>`` (the timestamp in Unix seconds) and the replay window applies to it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    signature_header: str = "x-signature"
    # Text before the digest in the header (e.g. "sha256="), if the sender writes one.
    signature_prefix: str = ""
    encoding: Encoding = Encoding.HEX
    id_header: str = "x-webhook-id"
    timestamp_header: str | None = None

    @field_validator("signature_header", "id_header", "timestamp_header")
    @classmethod
    def _header(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not re.fullmatch(r"[A-Za-z0-9-]{1,100}", value):
            raise ValueError("must be an HTTP header name (letters, digits and '-')")
        return value.lower()


class SecretRef(BaseModel):
    """Where a source's secret is: in Secrets Manager (``secret_id``, deployed) or given inline
    (``secret``, `stepline dev` and `stepline start`, whose state is a local file)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    secret_id: str | None = None
    secret: str | None = Field(default=None, repr=False)


class Origin(str, Enum):
    API = "api"  # stored through the REST API or the CLI
    DEPLOYMENT = "deployment"  # set by the stack's stepline:webhooks (read-only through the API)


class JsonPathMapping(BaseModel):
    """One event per delivery: its name (fixed, or read from the payload) and its data, each
    field a JSON path into the payload (``$.data.object.id``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str | None = None
    name_path: str | None = None
    data: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_name(self) -> JsonPathMapping:
        if (self.name is None) == (self.name_path is None):
            raise ValueError("give exactly one of name (a fixed event name) or name_path (a JSON path to it)")
        return self


class Transform(BaseModel):
    """How a delivery becomes events: a CEL expression or a JSON path mapping (never code).
    Without either, one event named ``webhook/<source>`` carries the whole payload."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cel: str | None = None
    mapping: JsonPathMapping | None = None

    @model_validator(mode="after")
    def _at_most_one(self) -> Transform:
        if self.cel is not None and self.mapping is not None:
            raise ValueError("give either cel or mapping, not both")
        return self


class WebhookSource(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str
    provider: Provider
    secret_id: str | None = None
    secret: str | None = Field(default=None, repr=False)
    replay_window_s: int | None = Field(default=None, ge=1, le=MAX_REPLAY_WINDOW_S)
    hmac: HmacScheme | None = None
    transform: Transform = Field(default_factory=Transform)
    origin: Origin = Origin.API

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        if not SOURCE_NAME.fullmatch(value):
            raise ValueError("must be 1-64 characters of a-z, 0-9, '-' and '_', starting with a letter or digit")
        return value

    @field_validator("secret_id")
    @classmethod
    def _secret_id(cls, value: str | None) -> str | None:
        # A Secrets Manager name (letters, digits and /_+=.@-) or ARN (with ':'), at most 2,048.
        if value is not None and not re.fullmatch(r"[A-Za-z0-9/_+=.@:-]{1,2048}", value):
            raise ValueError("must be a Secrets Manager secret's name or ARN")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> WebhookSource:
        if (self.secret_id is None) == (self.secret is None):
            raise ValueError("secret: give exactly one of secret_id (a Secrets Manager secret) or secret")
        if self.secret is not None and not self.secret.strip():
            raise ValueError("secret: empty")
        if self.hmac is not None and self.provider != Provider.HMAC:
            raise ValueError("hmac: only for provider 'hmac'")
        # What will never evaluate is refused now, not at the first delivery.
        if self.transform.cel is not None:
            try:
                compile_expression(self.transform.cel)
            except ExpressionError as exc:
                raise ValueError(f"transform.cel: {exc}") from None
        mapping = self.transform.mapping
        if mapping is not None:
            if mapping.name_path is not None:
                parse_path(mapping.name_path, "transform.mapping.name_path")
            for field, path in mapping.data.items():
                parse_path(path, f"transform.mapping.data.{field}")
        return self

    @property
    def window_s(self) -> int:
        return self.replay_window_s or DEFAULT_REPLAY_WINDOW_S[self.provider]

    @property
    def scheme(self) -> HmacScheme:
        return self.hmac or HmacScheme()

    def public(self) -> dict[str, Any]:
        """What the REST API shows: everything but an inline secret's value."""
        shown = self.model_dump(mode="json", exclude_none=True, exclude={"secret"})
        shown["replay_window_s"] = self.window_s
        if self.secret is not None:
            shown["secret"] = "(set)"
        return shown


class SourceConfigError(ValueError):
    """A configuration that cannot be used; the message names the field."""


def parse_source(raw: Any, *, origin: Origin = Origin.API) -> WebhookSource:
    """A source from its JSON form; ``SourceConfigError`` naming the first field that is wrong."""
    if not isinstance(raw, Mapping):
        raise SourceConfigError('body: expected an object like {"source": "stripe", "provider": "stripe", ...}')
    if "origin" in raw and origin == Origin.API:
        raise SourceConfigError("origin: set by the runtime, not in a configuration")
    try:
        return WebhookSource.model_validate({**raw, "origin": origin})
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or _field_in(error["msg"])
        message = str(error["msg"]).removeprefix("Value error, ")
        if message.startswith(f"{where}: "):
            message = message[len(where) + 2 :]
        raise SourceConfigError(f"{where}: {message}") from None


def _field_in(message: str) -> str:
    """The field a model-level check names at the start of its message ("secret: ...")."""
    head = message.removeprefix("Value error, ").split(":", 1)[0]
    return head if re.fullmatch(r"[a-z_.]+", head) else "body"


class Rejection(str, Enum):
    """Why a delivery got a 401 (the counters' names)."""

    UNSIGNED = "unsigned"  # no signature header
    BAD_SIGNATURE = "bad_signature"  # a signature that does not match, or cannot be read
    OUTSIDE_WINDOW = "outside_window"  # a signed timestamp too far from now
    REPLAYED = "replayed"  # a signature already bound to another delivery id within the window


class DeliveryRejected(Exception):
    """A delivery that is not the provider's: answered 401 and counted."""

    def __init__(self, reason: Rejection, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class DeliveryInvalid(Exception):
    """A signed delivery that cannot become events (no delivery id, a body that is not JSON, a
    transform that fails on it): answered 400, nothing stored."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Delivery:
    """One request to ``/webhooks/{source}``: header names lower-cased, the body as received."""

    headers: Mapping[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        value = self.headers.get(name.lower())
        return value.strip() if value is not None else None


@dataclass(frozen=True)
class Verified:
    """A delivery whose signature checked out."""

    delivery_id: str
    # Whether the signature covers the delivery id. When it does not (GitHub, Shopify, the
    # generic scheme), the receiver binds the signature to its first delivery id for the replay
    # window, so a captured delivery resent under a new id is refused.
    id_signed: bool
    # The signature as computed, for that binding.
    digest: bytes


class SecretUnusable(Exception):
    """A source's secret that cannot be used for its provider (never carries the secret): the
    operator's to fix, so a 500 that names the source, not a 401 counted against the sender."""

    def __init__(self, source: str, why: str) -> None:
        super().__init__(f"webhook source {source!r}: its secret cannot be used: {why}")
        self.message = str(self)


def deployed_sources(text: str) -> list[WebhookSource]:
    """The sources a deployment sets: a JSON list of configurations (``STEPLINE_WEBHOOK_SOURCES``,
    written by the stack from ``stepline:webhooks``); ValueError naming the source and field."""
    if not text.strip():
        return []
    try:
        raw = json_module.loads(text)
    except ValueError:
        raise ValueError("webhook_sources: not JSON") from None
    if not isinstance(raw, list):
        raise ValueError("webhook_sources: expected a JSON list of source configurations")
    sources: list[WebhookSource] = []
    for index, item in enumerate(raw):
        try:
            sources.append(parse_source(item, origin=Origin.DEPLOYMENT))
        except SourceConfigError as exc:
            name = item.get("source") if isinstance(item, dict) else None
            raise ValueError(f"webhook_sources[{index}] ({name or 'unnamed'}): {exc}") from None
    names = [s.source for s in sources]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"webhook_sources: {duplicated[0]!r} is configured twice")
    return sources
