"""Each example workflow as a unit test with ``stepline.testing``: no server, fake services,
a manual clock. This is how the README suggests testing workflows."""

from __future__ import annotations

import uuid

import pytest

from examples.daily_digest import DigestRequested, daily_digest, send_digest
from examples.document_pipeline import DocumentUploaded, chunk_text, process_document
from examples.order_processing import OrderPlaced, process_order
from examples.payment_webhook import PaymentWebhook, payment_webhook
from examples.services import HANDBOOK, services
from examples.welcome_drip import UserSignedUp, welcome_drip
from stepline import testing
from stepline.testing import ManualClock

DAY_MS = 24 * 3600 * 1000


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_welcome_drip_sends_the_tips_a_day_after_the_welcome():
    user = uid("u")
    services.add_user(user, "Ada", f"{user}@example.com")
    clock = ManualClock(1_800_000_000_000)
    result = testing.run(welcome_drip, UserSignedUp(user_id=user), clock=clock)
    assert result.status == "Completed" and result.output == {"user_id": user, "emails_sent": 2}
    assert [m["subject"] for m in services.emails_to(f"{user}@example.com")] == ["Welcome, Ada!", "3 tips to get started"]
    assert result.step("wait-a-day").name == "24h" and clock.now_ms() == 1_800_000_000_000 + DAY_MS


def test_welcome_drip_for_an_unknown_user_fails_without_retries():
    nobody = uid("nobody")
    result = testing.run(welcome_drip, UserSignedUp(user_id=nobody))
    assert result.status == "Failed" and "no user" in result.error["message"]
    # NonRetriableError inside a step ends the run at once: one call, one lookup.
    assert result.calls == 1 and services.count("users.get", nobody) == 1


def test_order_in_stock_is_charged_and_shipped():
    order = uid("o")
    result = testing.run(process_order, OrderPlaced(order_id=order, user_id="u-ada", sku="sku-mug", amount_cents=1500))
    assert result.output["status"] == "shipped"
    assert result.step_ids == ["check-inventory", "authorize-payment", "charge", "ship"]
    assert services.count("payments.capture", order) == 1 and services.count("shipping.create", order) == 1


def test_order_out_of_stock_is_backordered_and_the_authorization_voided():
    order = uid("o")
    result = testing.run(process_order, OrderPlaced(order_id=order, user_id="u-ada", sku="sku-rare-vinyl",
                                                    quantity=2, amount_cents=9000))
    assert result.output == {"order_id": order, "status": "backordered"}
    [event] = result.sent_events
    assert event["name"] == "shop/order.backordered"
    assert event["data"] == {"order_id": order, "sku": "sku-rare-vinyl", "quantity": 2, "available": 0}
    assert "void-authorization" in result.step_ids and services.count("payments.capture", order) == 0


def test_order_with_a_declined_payment_ships_nothing():
    order = uid("o")
    result = testing.run(process_order, OrderPlaced(order_id=order, user_id="u-ada", sku="sku-mug",
                                                    amount_cents=900_000))
    assert result.output["status"] == "payment_declined" and services.count("shipping.create", order) == 0


def test_order_with_a_mocked_payment_processor():
    result = testing.run(process_order, OrderPlaced(order_id=uid("o"), user_id="u", sku="sku-mug", amount_cents=1),
                         mocks={"authorize-payment": {"authorization_id": "auth_test", "approved": True},
                                "charge": {"charge_id": "ch_test"}, "ship": {"tracking_number": "trk_test"}})
    assert result.output["charge_id"] == "ch_test" and result.output["tracking_number"] == "trk_test"


def test_daily_digest_fans_out_one_event_per_subscriber_and_each_digest_is_sent():
    result = testing.run(daily_digest, clock=ManualClock(1_800_000_000_000))  # a cron tick
    assert result.output["sent"] == len(services.digest_subscribers())
    requests = [e for e in result.sent_events if e["name"] == "digest/send"]
    assert {e["data"]["user_id"] for e in requests} == set(services.digest_subscribers())
    day = requests[0]["data"]["day"]
    assert day == "2027-01-15"
    digest = testing.run(send_digest, DigestRequested(user_id="u-grace", day=day))
    assert digest.status == "Completed"
    assert services.emails_to("grace@example.com")[-1]["subject"] == f"Your digest for {day}"


@pytest.mark.parametrize("kind, step", [
    ("payment_intent.succeeded", "mark-order-paid"),
    ("payment_intent.payment_failed", "mark-payment-failed"),
    ("charge.refunded", "record-refund"),
])
def test_payment_webhook_dispatches_on_the_event_type(kind, step):
    order = uid("o")
    hook = PaymentWebhook(provider_event_id=uid("evt"), type=kind,
                          payload={"order_id": order, "amount_cents": 700, "customer_email": "c@example.com"})
    result = testing.run(payment_webhook, hook)
    assert result.output["handled"] == kind and result.step_ids[0] == step


def test_payment_webhook_ignores_unknown_types():
    hook = PaymentWebhook(provider_event_id=uid("evt"), type="customer.created", payload={})
    result = testing.run(payment_webhook, hook)
    assert result.output == {"ignored": "customer.created"} and result.steps == []


def test_document_pipeline_stores_one_vector_per_chunk():
    doc = uid("doc")
    services.upload_document(doc, HANDBOOK)
    result = testing.run(process_document, DocumentUploaded(document_id=doc))
    chunks = chunk_text(HANDBOOK)
    assert result.output == {"document_id": doc, "chunks": len(chunks), "stored": len(chunks)}
    assert result.step_ids == ["extract", "chunk", "embed", "store"]
    assert len(services.vectors[doc]) == len(chunks) > 1


def test_document_pipeline_retries_only_the_stage_that_failed():
    doc = uid("doc")
    services.upload_document(doc, HANDBOOK)
    services.fail_embeddings(doc, 2)
    result = testing.run(process_document, DocumentUploaded(document_id=doc))
    assert result.status == "Completed" and result.step("embed").attempts == 3
    assert services.count("documents.extract", doc) == 1 and services.count("ai.embed", doc) == 3


def test_document_pipeline_gives_up_after_its_retries():
    doc = uid("doc")
    services.upload_document(doc, HANDBOOK)
    services.fail_embeddings(doc, 5)
    result = testing.run(process_document, DocumentUploaded(document_id=doc))
    assert result.status == "Failed" and result.step("embed").attempts == 3  # retries=2
    assert "overloaded" in result.step("embed").error["message"]
