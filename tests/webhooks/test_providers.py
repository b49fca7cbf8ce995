"""Each provider's verifier against the examples the providers publish, deliveries signed by
their documented recipe, and forged, altered, unsigned and stale ones."""

from __future__ import annotations

import json

import pytest

from stepline.webhooks.model import (
    Delivery,
    DeliveryInvalid,
    DeliveryRejected,
    Rejection,
    SecretUnusable,
    parse_source,
)
from stepline.webhooks.providers import verify
from tests.webhooks.signing import github_header, hmac_hex, shopify_header, standard_headers, stripe_header

NOW_S = 1_700_000_000


def source(provider: str, **extra):
    return parse_source({"source": "s", "provider": provider, "secret": "x", **extra})


def delivery(headers: dict[str, str], body: bytes) -> Delivery:
    return Delivery({k.lower(): v for k, v in headers.items()}, body)


def rejected(reason: Rejection, *args) -> None:
    with pytest.raises(DeliveryRejected) as caught:
        verify(*args)
    assert caught.value.reason == reason, caught.value.message


# -- GitHub -------------------------------------------------------------------------------------
# docs.github.com, "Validating webhook deliveries", "Testing the webhook payload validation".
GITHUB_SECRET = "It's a Secret to Everybody"
GITHUB_PAYLOAD = b"Hello, World!"
GITHUB_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_github_published_example_verifies() -> None:
    got = verify(
        source("github"),
        GITHUB_SECRET,
        delivery({"X-Hub-Signature-256": GITHUB_SIGNATURE, "X-GitHub-Delivery": "72d3162e-cc78"}, GITHUB_PAYLOAD),
        NOW_S * 1000,
    )
    assert got.delivery_id == "72d3162e-cc78"
    assert got.id_signed is False  # GitHub does not sign the delivery id: the receiver binds it


def test_github_forged_altered_and_unsigned() -> None:
    src, now = source("github"), NOW_S * 1000
    headers = {"X-GitHub-Delivery": "d-1"}
    rejected(
        Rejection.BAD_SIGNATURE,
        src,
        "another secret",
        delivery({**headers, "X-Hub-Signature-256": GITHUB_SIGNATURE}, GITHUB_PAYLOAD),
        now,
    )
    rejected(
        Rejection.BAD_SIGNATURE,
        src,
        GITHUB_SECRET,
        delivery({**headers, "X-Hub-Signature-256": GITHUB_SIGNATURE}, b"Hello, World?"),
        now,
    )
    rejected(Rejection.UNSIGNED, src, GITHUB_SECRET, delivery(headers, GITHUB_PAYLOAD), now)
    # The legacy SHA-1 header alone is not enough.
    rejected(
        Rejection.UNSIGNED, src, GITHUB_SECRET, delivery({**headers, "X-Hub-Signature": "sha1=00"}, GITHUB_PAYLOAD), now
    )
    rejected(
        Rejection.BAD_SIGNATURE,
        src,
        GITHUB_SECRET,
        delivery({**headers, "X-Hub-Signature-256": "sha256=zz"}, GITHUB_PAYLOAD),
        now,
    )
    rejected(
        Rejection.BAD_SIGNATURE,
        src,
        GITHUB_SECRET,
        delivery({**headers, "X-Hub-Signature-256": "757107ea"}, GITHUB_PAYLOAD),
        now,
    )


def test_github_signed_without_delivery_id_is_invalid_not_forged() -> None:
    with pytest.raises(DeliveryInvalid, match="x-github-delivery"):
        verify(source("github"), GITHUB_SECRET, delivery({"X-Hub-Signature-256": GITHUB_SIGNATURE}, GITHUB_PAYLOAD), 0)


# -- Standard Webhooks / Svix --------------------------------------------------------------------
# The published Standard Webhooks example: the vector the scheme's libraries and Svix's test
# their signing against (e.g. Svix's PHP library, testSignFunctionWorks).
STANDARD_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
STANDARD_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
STANDARD_TS = 1614265330
STANDARD_PAYLOAD = b'{"test": 2432232314}'
STANDARD_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
STANDARD_HEADERS = {
    "webhook-id": STANDARD_ID,
    "webhook-timestamp": str(STANDARD_TS),
    "webhook-signature": STANDARD_SIGNATURE,
}


def test_standard_published_example_verifies_within_its_window() -> None:
    got = verify(source("standard"), STANDARD_SECRET, delivery(STANDARD_HEADERS, STANDARD_PAYLOAD), STANDARD_TS * 1000)
    assert (got.delivery_id, got.id_signed) == (STANDARD_ID, True)
    # Svix's own header names carry the same scheme.
    svix = {k.replace("webhook-", "svix-"): v for k, v in STANDARD_HEADERS.items()}
    assert (
        verify(source("standard"), STANDARD_SECRET, delivery(svix, STANDARD_PAYLOAD), STANDARD_TS * 1000).delivery_id
        == STANDARD_ID
    )
    # Several signatures (a secret being rotated): one matching is enough.
    rotated = {
        **STANDARD_HEADERS,
        "webhook-signature": "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= " + STANDARD_SIGNATURE,
    }
    verify(source("standard"), STANDARD_SECRET, delivery(rotated, STANDARD_PAYLOAD), STANDARD_TS * 1000)


def test_standard_replay_window_is_the_sources_own() -> None:
    args = (STANDARD_SECRET, delivery(STANDARD_HEADERS, STANDARD_PAYLOAD))
    rejected(Rejection.OUTSIDE_WINDOW, source("standard"), *args, (STANDARD_TS + 301) * 1000)
    rejected(Rejection.OUTSIDE_WINDOW, source("standard"), *args, (STANDARD_TS - 301) * 1000)
    verify(source("standard", replay_window_s=600), *args, (STANDARD_TS + 599) * 1000)
    rejected(Rejection.OUTSIDE_WINDOW, source("standard", replay_window_s=60), *args, (STANDARD_TS + 61) * 1000)


def test_standard_forged_altered_and_malformed() -> None:
    now = STANDARD_TS * 1000
    rejected(
        Rejection.BAD_SIGNATURE,
        source("standard"),
        "whsec_" + "A" * 32,
        delivery(STANDARD_HEADERS, STANDARD_PAYLOAD),
        now,
    )
    rejected(
        Rejection.BAD_SIGNATURE,
        source("standard"),
        STANDARD_SECRET,
        delivery(STANDARD_HEADERS, b'{"test": 2432232315}'),
        now,
    )
    # The id and the timestamp are signed: changing either breaks the signature.
    rejected(
        Rejection.BAD_SIGNATURE,
        source("standard"),
        STANDARD_SECRET,
        delivery({**STANDARD_HEADERS, "webhook-id": "msg_other"}, STANDARD_PAYLOAD),
        now,
    )
    moved = {**STANDARD_HEADERS, "webhook-timestamp": str(STANDARD_TS + 1)}
    rejected(Rejection.BAD_SIGNATURE, source("standard"), STANDARD_SECRET, delivery(moved, STANDARD_PAYLOAD), now)
    for bad in ("v1", "v1,", "v1,not base64!", "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", "garbage"):
        with pytest.raises(DeliveryRejected):
            verify(
                source("standard"),
                STANDARD_SECRET,
                delivery({**STANDARD_HEADERS, "webhook-signature": bad}, STANDARD_PAYLOAD),
                now,
            )
    no_sig = {k: v for k, v in STANDARD_HEADERS.items() if k != "webhook-signature"}
    rejected(Rejection.UNSIGNED, source("standard"), STANDARD_SECRET, delivery(no_sig, STANDARD_PAYLOAD), now)
    rejected(
        Rejection.BAD_SIGNATURE,
        source("standard"),
        STANDARD_SECRET,
        delivery({**STANDARD_HEADERS, "webhook-timestamp": "soon"}, STANDARD_PAYLOAD),
        now,
    )


def test_standard_secret_that_is_not_base64_is_the_operators_problem() -> None:
    with pytest.raises(SecretUnusable, match="whsec_"):
        verify(source("standard"), "whsec_%%%", delivery(STANDARD_HEADERS, STANDARD_PAYLOAD), STANDARD_TS * 1000)


def test_standard_signer_agrees_with_the_library_on_a_fresh_delivery() -> None:
    headers = standard_headers(STANDARD_SECRET, "msg_2", b'{"a": 1}', NOW_S)
    assert (
        verify(source("standard"), STANDARD_SECRET, delivery(headers, b'{"a": 1}'), NOW_S * 1000).delivery_id == "msg_2"
    )


# -- Stripe -------------------------------------------------------------------------------------
# Stripe publishes the recipe (docs.stripe.com, "Verify webhook signatures manually") but no
# example with its secret: these are signed by that recipe.
STRIPE_SECRET = "whsec_test_secret"
STRIPE_BODY = json.dumps({"id": "evt_1NG8Du2eZvKYlo2CUI79vXWy", "type": "payment_intent.succeeded"}).encode()


def test_stripe_signed_delivery_verifies_with_its_event_id() -> None:
    header = stripe_header(STRIPE_SECRET, STRIPE_BODY, NOW_S)
    got = verify(source("stripe"), STRIPE_SECRET, delivery({"Stripe-Signature": header}, STRIPE_BODY), NOW_S * 1000)
    assert (got.delivery_id, got.id_signed) == ("evt_1NG8Du2eZvKYlo2CUI79vXWy", True)
    # While a secret is rolled Stripe sends a v1 per secret, and a v0 test signature: any v1 matching is enough.
    rolled = f"t={NOW_S},v1={'0' * 64},{header.split(',')[1]},v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39"
    verify(source("stripe"), STRIPE_SECRET, delivery({"Stripe-Signature": rolled}, STRIPE_BODY), NOW_S * 1000)


def test_stripe_tolerance_forged_and_malformed() -> None:
    header = stripe_header(STRIPE_SECRET, STRIPE_BODY, NOW_S)
    d = delivery({"Stripe-Signature": header}, STRIPE_BODY)
    rejected(Rejection.OUTSIDE_WINDOW, source("stripe"), STRIPE_SECRET, d, (NOW_S + 301) * 1000)
    verify(source("stripe", replay_window_s=3600), STRIPE_SECRET, d, (NOW_S + 3000) * 1000)
    rejected(Rejection.BAD_SIGNATURE, source("stripe"), "whsec_other", d, NOW_S * 1000)
    # The timestamp is signed: moving it into the window breaks the signature.
    moved = header.replace(f"t={NOW_S}", f"t={NOW_S + 1000}")
    rejected(
        Rejection.BAD_SIGNATURE,
        source("stripe"),
        STRIPE_SECRET,
        delivery({"Stripe-Signature": moved}, STRIPE_BODY),
        (NOW_S + 1000) * 1000,
    )
    for bad in ("t=1", "v1=abc", "nonsense", f"t=x,v1={'0' * 64}", "t=1,v1=zz"):
        with pytest.raises(DeliveryRejected):
            verify(source("stripe"), STRIPE_SECRET, delivery({"Stripe-Signature": bad}, STRIPE_BODY), NOW_S * 1000)
    rejected(Rejection.UNSIGNED, source("stripe"), STRIPE_SECRET, delivery({}, STRIPE_BODY), NOW_S * 1000)


def test_stripe_signed_body_without_an_id_is_invalid() -> None:
    body = b'{"type": "x"}'
    with pytest.raises(DeliveryInvalid, match="body.id"):
        verify(
            source("stripe"),
            STRIPE_SECRET,
            delivery({"Stripe-Signature": stripe_header(STRIPE_SECRET, body, NOW_S)}, body),
            NOW_S * 1000,
        )


# -- Shopify ------------------------------------------------------------------------------------
# Shopify documents the recipe (shopify.dev, "Verify webhook deliveries"): base64 of the
# HMAC-SHA256 of the raw body, keyed with the app's client secret.
SHOPIFY_SECRET = "hush"
SHOPIFY_BODY = b'{"id": 820982911946154508, "email": "jon@example.com"}'


def test_shopify_verifies_and_refuses() -> None:
    headers = {
        "X-Shopify-Hmac-Sha256": shopify_header(SHOPIFY_SECRET, SHOPIFY_BODY),
        "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
    }
    got = verify(source("shopify"), SHOPIFY_SECRET, delivery(headers, SHOPIFY_BODY), 0)
    assert (got.delivery_id, got.id_signed) == ("b54557e4-bdd9-4b37-8a5f-bf7d70bcd043", False)
    rejected(Rejection.BAD_SIGNATURE, source("shopify"), "other", delivery(headers, SHOPIFY_BODY), 0)
    rejected(Rejection.BAD_SIGNATURE, source("shopify"), SHOPIFY_SECRET, delivery(headers, SHOPIFY_BODY + b" "), 0)
    # Hex where base64 belongs is refused, not half-read.
    hexed = {**headers, "X-Shopify-Hmac-Sha256": hmac_hex(SHOPIFY_SECRET, SHOPIFY_BODY)}
    rejected(Rejection.BAD_SIGNATURE, source("shopify"), SHOPIFY_SECRET, delivery(hexed, SHOPIFY_BODY), 0)
    rejected(
        Rejection.UNSIGNED, source("shopify"), SHOPIFY_SECRET, delivery({"X-Shopify-Webhook-Id": "w"}, SHOPIFY_BODY), 0
    )


# -- generic HMAC -------------------------------------------------------------------------------


def test_generic_hmac_with_defaults_prefix_base64_and_timestamp() -> None:
    body, secret = b'{"order": 7}', "shared"
    plain = {"X-Signature": hmac_hex(secret, body), "X-Webhook-Id": "w-1"}
    assert verify(source("hmac"), secret, delivery(plain, body), 0).delivery_id == "w-1"
    rejected(Rejection.BAD_SIGNATURE, source("hmac"), "other", delivery(plain, body), 0)

    scheme = {"signature_header": "X-Acme-Signature", "signature_prefix": "sha256=", "encoding": "base64",
              "id_header": "X-Acme-Delivery", "timestamp_header": "X-Acme-Timestamp"}  # fmt: skip
    src = source("hmac", hmac=scheme, replay_window_s=120)
    import base64
    import hashlib
    import hmac

    stamp = str(NOW_S)
    digest = base64.b64encode(hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).digest()).decode()
    headers = {"X-Acme-Signature": "sha256=" + digest, "X-Acme-Delivery": "a-1", "X-Acme-Timestamp": stamp}
    assert verify(src, secret, delivery(headers, body), NOW_S * 1000).delivery_id == "a-1"
    rejected(Rejection.OUTSIDE_WINDOW, src, secret, delivery(headers, body), (NOW_S + 121) * 1000)
    rejected(
        Rejection.BAD_SIGNATURE,
        src,
        secret,
        delivery({**headers, "X-Acme-Timestamp": str(NOW_S + 1)}, body),
        NOW_S * 1000,
    )
    rejected(
        Rejection.BAD_SIGNATURE, src, secret, delivery({**headers, "X-Acme-Signature": digest}, body), NOW_S * 1000
    )
    rejected(
        Rejection.UNSIGNED,
        src,
        secret,
        delivery({k: v for k, v in headers.items() if k != "X-Acme-Timestamp"}, body),
        NOW_S * 1000,
    )


def test_an_unreadable_signature_beside_a_valid_one_does_not_hide_it() -> None:
    # As the providers' libraries do: an entry that cannot match is skipped, not fatal.
    header = stripe_header(STRIPE_SECRET, STRIPE_BODY, NOW_S)
    mixed = f"t={NOW_S},v1=not-hex,{header.split(',')[1]}"
    verify(source("stripe"), STRIPE_SECRET, delivery({"Stripe-Signature": mixed}, STRIPE_BODY), NOW_S * 1000)
    mixed_standard = {**STANDARD_HEADERS, "webhook-signature": "v1,not*base64 " + STANDARD_SIGNATURE}
    verify(source("standard"), STANDARD_SECRET, delivery(mixed_standard, STANDARD_PAYLOAD), STANDARD_TS * 1000)
    only_bad = {**STANDARD_HEADERS, "webhook-signature": "v1,not*base64"}
    rejected(
        Rejection.BAD_SIGNATURE,
        source("standard"),
        STANDARD_SECRET,
        delivery(only_bad, STANDARD_PAYLOAD),
        STANDARD_TS * 1000,
    )
