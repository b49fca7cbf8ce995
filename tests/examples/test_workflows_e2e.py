"""The five example workflows end to end: events into `stepline dev`, runs through the example
app over HTTP, effects checked in the fake services. Sleeps are driven by the manual clock."""

from __future__ import annotations

import datetime
import uuid

from examples.document_pipeline import chunk_text
from examples.services import HANDBOOK
from tests.sdk.harness import wait_for

HOUR_MS = 3600 * 1000


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def drip_subjects(svc, email: str) -> list[str]:
    # The daily digest (cron 09:00) also writes to every user while the clock moves a day.
    return [m["subject"] for m in svc.emails_to(email) if not m["subject"].startswith("Your digest")]


def test_welcome_drip_sends_tips_only_after_24_hours(stack, svc):
    user = uid("u")
    email = f"{user}@example.com"
    svc.add_user(user, "Ada", email)
    [event_id] = stack.send({"name": "user/signed.up", "data": {"user_id": user}})
    wait_for(lambda: len(svc.emails_to(email)) == 1, what="the welcome email")
    run_id = stack.running(event_id)["run_id"]
    wait_for(lambda: stack.runtime.backend.store.load_run(run_id).pending, what="the 24h sleep to be scheduled")

    stack.clock.advance(23 * HOUR_MS)
    stack.settle()
    assert drip_subjects(svc, email) == ["Welcome, Ada!"]
    assert stack.running(event_id)

    stack.clock.advance(HOUR_MS)
    run = stack.wait_run(event_id, status="Completed")
    assert run["output"] == {"user_id": user, "emails_sent": 2}
    assert drip_subjects(svc, email) == ["Welcome, Ada!", "3 tips to get started"]
    assert svc.count("email.send", f"{email}|Welcome, Ada!") == 1
    # Once for the drip, and once per digest the cron sent this user meanwhile.
    digests = len(svc.emails_to(email)) - len(drip_subjects(svc, email))
    assert svc.count("users.get", user) == 1 + digests


def test_order_in_stock_is_checked_in_parallel_then_charged_and_shipped(stack, svc):
    order = uid("o")
    [event_id] = stack.send({"name": "shop/order.placed", "data": {
        "order_id": order, "user_id": "u-ada", "sku": "sku-mug", "quantity": 2, "amount_cents": 2400}})
    run = stack.wait_run(event_id, status="Completed")
    assert run["output"]["status"] == "shipped" and run["output"]["tracking_number"].startswith("trk_")
    for op in ("payments.authorize", "payments.capture", "shipping.create"):
        assert svc.count(op, order) == 1, op
    assert [c["amount_cents"] for c in svc.charges if c["order_id"] == order] == [2400]


def test_order_out_of_stock_sends_a_backorder_event_and_charges_nothing(stack, svc):
    order = uid("o")
    [event_id] = stack.send({"name": "shop/order.placed", "data": {
        "order_id": order, "user_id": "u-ada", "sku": "sku-rare-vinyl", "quantity": 1, "amount_cents": 4000}})
    run = stack.wait_run(event_id, status="Completed")
    assert run["output"] == {"order_id": order, "status": "backordered"}
    backorders = [e for e in stack.events("shop/order.backordered") if e["data"]["order_id"] == order]
    assert len(backorders) == 1
    assert backorders[0]["data"] == {"order_id": order, "sku": "sku-rare-vinyl", "quantity": 1, "available": 0}
    assert svc.count("payments.capture", order) == 0 and svc.count("shipping.create", order) == 0


def test_an_invalid_order_event_fails_without_retries(stack, svc):
    [event_id] = stack.send({"name": "shop/order.placed", "data": {"order_id": uid("o"), "sku": "sku-mug"}})
    run = stack.wait_run(event_id, status="Failed")
    assert "does not match OrderPlaced" in run["error"]["message"]


def test_payment_webhook_dispatches_each_event_type(stack, svc):
    paid, failed, refunded = uid("o"), uid("o"), uid("o")
    ids = stack.send(
        {"name": "payments/webhook.received", "data": {"provider_event_id": uid("evt"), "type": "payment_intent.succeeded",
                                                        "payload": {"order_id": paid, "amount_cents": 1999}}},
        {"name": "payments/webhook.received", "data": {"provider_event_id": uid("evt"), "type": "payment_intent.payment_failed",
                                                        "payload": {"order_id": failed, "reason": "insufficient_funds",
                                                                    "customer_email": f"{failed}@example.com"}}},
        {"name": "payments/webhook.received", "data": {"provider_event_id": uid("evt"), "type": "charge.refunded",
                                                        "payload": {"order_id": refunded, "amount_cents": 500}}},
        {"name": "payments/webhook.received", "data": {"provider_event_id": uid("evt"), "type": "customer.created"}},
    )
    runs = [stack.wait_run(i, status="Completed") for i in ids]
    assert [r["output"].get("handled") or r["output"]["ignored"] for r in runs] == [
        "payment_intent.succeeded", "payment_intent.payment_failed", "charge.refunded", "customer.created"]
    assert svc.orders[paid]["status"] == "paid" and svc.orders[paid]["paid_cents"] == 1999
    assert svc.orders[failed]["status"] == "payment_failed"
    assert [m["subject"] for m in svc.emails_to(f"{failed}@example.com")] == ["Your payment did not go through"]
    assert svc.orders[refunded]["refunded_cents"] == 500


def test_document_pipeline_extracts_chunks_embeds_and_stores(stack, svc):
    doc = uid("doc")
    svc.upload_document(doc, HANDBOOK)
    [event_id] = stack.send({"name": "docs/document.uploaded", "data": {"document_id": doc}})
    run = stack.wait_run(event_id, status="Completed")
    chunks = len(chunk_text(HANDBOOK))
    assert run["output"] == {"document_id": doc, "chunks": chunks, "stored": chunks}
    assert len(svc.vectors[doc]) == chunks
    assert [svc.count(op, doc) for op in ("documents.extract", "ai.embed", "vectors.upsert")] == [1, 1, 1]


def test_document_pipeline_retries_the_embedding_alone(stack, svc):
    doc = uid("doc")
    svc.upload_document(doc, HANDBOOK)
    svc.fail_embeddings(doc, 2)
    [event_id] = stack.send({"name": "docs/document.uploaded", "data": {"document_id": doc}})
    # Each retry waits out its backoff on the server's clock: move it along while polling.
    run = stack.wait_run(event_id, status="Completed", nudge_ms=5_000)
    assert run["output"]["stored"] == len(chunk_text(HANDBOOK))
    assert svc.count("ai.embed", doc) == 3 and svc.count("documents.extract", doc) == 1


def test_daily_digest_fan_out_sends_every_subscriber_a_digest(stack, svc):
    # The manual trigger of the cron function (the cron itself: test_pending_engine_features).
    user = uid("u")
    svc.add_user(user, "Grace", f"{user}@example.com")
    subscribers = svc.digest_subscribers()
    day = datetime.datetime.fromtimestamp(stack.clock.now_ms() / 1000, datetime.timezone.utc).date().isoformat()
    [event_id] = stack.send({"name": "digest/run-now", "data": {}})
    run = stack.wait_run(event_id, status="Completed")
    assert run["output"] == {"day": day, "sent": len(subscribers)}
    requests = [e for e in stack.events("digest/send") if e["data"]["day"] == day]
    mine = [e for e in requests if e["data"]["user_id"] == user]
    assert len(mine) == 1
    [digest] = stack.wait_runs(mine[0]["internal_id"], 1)
    assert digest["status"] == "Completed" and digest["function_id"] == "stepline-examples-send-digest"
    assert [m["subject"] for m in svc.emails_to(f"{user}@example.com")] == [f"Your digest for {day}"]
