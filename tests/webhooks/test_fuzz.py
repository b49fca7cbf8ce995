"""Whatever a sender puts in the headers and the body, a verifier refuses it with a 401 reason or
a 400, never anything else; whatever an operator configures is a source or a refusal naming a
field."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stepline.webhooks.model import (
    Delivery,
    DeliveryInvalid,
    DeliveryRejected,
    Provider,
    SourceConfigError,
    parse_source,
)
from stepline.webhooks.providers import verify

HEADER_NAMES = [
    "stripe-signature", "x-hub-signature-256", "x-github-delivery", "webhook-id", "webhook-timestamp",
    "webhook-signature", "svix-id", "svix-timestamp", "svix-signature", "x-shopify-hmac-sha256",
    "x-shopify-webhook-id", "x-signature", "x-webhook-id", "x-ts",
]  # fmt: skip
# Header values as they reach us: text, including the separators the schemes parse.
VALUES = st.one_of(
    st.text(alphabet=st.sampled_from("tv01=,. sha256abcdefABCDEF+/_-whsec"), max_size=80),
    st.text(max_size=40),
    st.from_regex(r"t=\d{1,12},v1=[0-9a-f]{0,64}", fullmatch=True),
    st.from_regex(r"v1,[A-Za-z0-9+/=]{0,48}( v1,[A-Za-z0-9+/=]{0,48})?", fullmatch=True),
)


def source(provider: Provider):
    extra = {"hmac": {"timestamp_header": "x-ts"}} if provider == Provider.HMAC else {}
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" if provider == Provider.STANDARD else "s3cret"
    return parse_source({"source": "f", "provider": provider.value, "secret": secret, **extra}), secret


@pytest.mark.parametrize("provider", list(Provider), ids=lambda p: p.value)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(headers=st.dictionaries(st.sampled_from(HEADER_NAMES), VALUES, max_size=6), body=st.binary(max_size=200),
       now_s=st.integers(0, 2**33))  # fmt: skip
def test_any_delivery_is_refused_with_a_reason_or_a_400(provider, headers, body, now_s):
    src, secret = source(provider)
    try:
        verify(src, secret, Delivery(headers, body), now_s * 1000)
    except (DeliveryRejected, DeliveryInvalid):
        return
    pytest.fail(f"accepted a delivery nobody signed: {headers!r}")


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=8,
)
FIELDS = st.sampled_from(["source", "provider", "secret", "secret_id", "replay_window_s", "hmac", "transform", "x"])


@settings(max_examples=300, deadline=None)
@given(raw=st.dictionaries(FIELDS, JSONISH, max_size=6) | JSONISH)
def test_any_configuration_is_a_source_or_a_refusal_naming_a_field(raw):
    try:
        parse_source(raw)
    except SourceConfigError as exc:
        field = str(exc).split(":", 1)[0]
        assert field and " " not in field, str(exc)
