"""Small in-memory stand-ins for the services real workflows call: a user directory, an email
provider, inventory, a payment processor, shipping, a document store, an embedding model and a
vector store.

Every call is counted per (operation, key), so tests can prove that a step's side effect
happened exactly once even though the function around it was replayed many times.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections import Counter
from typing import Any

from stepline import NonRetriableError


HANDBOOK = " ".join(
    f"Section {n}: how we work, how we ship, and how we help each other get unstuck." for n in range(1, 13)
)


class ServiceUnavailable(Exception):
    """A transient failure: the step that met it is retried."""


class Services:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.calls: Counter[str] = Counter()
            self.users: dict[str, dict[str, Any]] = {
                "u-ada": {"id": "u-ada", "name": "Ada", "email": "ada@example.com", "digest": True},
                "u-grace": {"id": "u-grace", "name": "Grace", "email": "grace@example.com", "digest": True},
                "u-linus": {"id": "u-linus", "name": "Linus", "email": "linus@example.com", "digest": False},
            }
            self.outbox: list[dict[str, Any]] = []
            self.stock: dict[str, int] = {"sku-mug": 100, "sku-poster": 3, "sku-rare-vinyl": 0}
            self.charges: list[dict[str, Any]] = []
            self.shipments: list[dict[str, Any]] = []
            self.orders: dict[str, dict[str, Any]] = {}
            self.documents: dict[str, str] = {"doc-handbook": HANDBOOK}
            self.vectors: dict[str, list[dict[str, Any]]] = {}
            self.embed_failures: dict[str, int] = {}

    def _count(self, op: str, key: str) -> None:
        self.calls[f"{op}:{key}"] += 1

    def count(self, op: str, key: str) -> int:
        with self._lock:
            return self.calls[f"{op}:{key}"]

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):06d}"

    # -- users -------------------------------------------------------------------------------
    def add_user(self, user_id: str, name: str, email: str, digest: bool = True) -> None:
        with self._lock:
            self.users[user_id] = {"id": user_id, "name": name, "email": email, "digest": digest}

    def get_user(self, user_id: str) -> dict[str, Any]:
        with self._lock:
            self._count("users.get", user_id)
            user = self.users.get(user_id)
        if user is None:
            # Retrying will not create the user.
            raise NonRetriableError(f"no user {user_id!r}")
        return dict(user)

    def digest_subscribers(self) -> list[str]:
        with self._lock:
            self._count("users.digest_subscribers", "all")
            return sorted(u["id"] for u in self.users.values() if u["digest"])

    # -- email -------------------------------------------------------------------------------
    def send_email(self, to: str, subject: str, body: str) -> dict[str, str]:
        with self._lock:
            self._count("email.send", f"{to}|{subject}")
            message = {"id": self._new_id("msg"), "to": to, "subject": subject, "body": body}
            self.outbox.append(message)
            return {"message_id": message["id"]}

    def emails_to(self, to: str) -> list[dict[str, Any]]:
        with self._lock:
            return [m for m in self.outbox if m["to"] == to]

    # -- shop --------------------------------------------------------------------------------
    def check_inventory(self, sku: str, quantity: int) -> dict[str, Any]:
        with self._lock:
            self._count("inventory.check", sku)
            available = self.stock.get(sku, 0)
            return {"sku": sku, "available": available, "in_stock": available >= quantity}

    def authorize_payment(self, order_id: str, amount_cents: int) -> dict[str, Any]:
        with self._lock:
            self._count("payments.authorize", order_id)
            # The fake processor declines anything over $5,000.
            approved = amount_cents <= 500_000
            return {"authorization_id": self._new_id("auth"), "approved": approved}

    def capture_payment(self, order_id: str, authorization_id: str, amount_cents: int) -> dict[str, Any]:
        with self._lock:
            self._count("payments.capture", order_id)
            charge = {"id": self._new_id("ch"), "order_id": order_id, "authorization_id": authorization_id,
                      "amount_cents": amount_cents}
            self.charges.append(charge)
            return {"charge_id": charge["id"]}

    def void_authorization(self, authorization_id: str) -> dict[str, Any]:
        with self._lock:
            self._count("payments.void", authorization_id)
            return {"voided": authorization_id}

    def create_shipment(self, order_id: str, sku: str, quantity: int) -> dict[str, Any]:
        with self._lock:
            self._count("shipping.create", order_id)
            self.stock[sku] = self.stock.get(sku, 0) - quantity
            shipment = {"tracking_number": self._new_id("trk"), "order_id": order_id, "sku": sku}
            self.shipments.append(shipment)
            return {"tracking_number": shipment["tracking_number"]}

    # -- payments webhooks -------------------------------------------------------------------
    def mark_order_paid(self, order_id: str, amount_cents: int) -> dict[str, Any]:
        with self._lock:
            self._count("orders.mark_paid", order_id)
            order = self.orders.setdefault(order_id, {"order_id": order_id})
            order.update(status="paid", paid_cents=amount_cents)
            return dict(order)

    def mark_payment_failed(self, order_id: str, reason: str) -> dict[str, Any]:
        with self._lock:
            self._count("orders.mark_failed", order_id)
            order = self.orders.setdefault(order_id, {"order_id": order_id})
            order.update(status="payment_failed", reason=reason)
            return dict(order)

    def record_refund(self, order_id: str, amount_cents: int) -> dict[str, Any]:
        with self._lock:
            self._count("orders.refund", order_id)
            order = self.orders.setdefault(order_id, {"order_id": order_id})
            order["refunded_cents"] = order.get("refunded_cents", 0) + amount_cents
            return dict(order)

    # -- documents and AI --------------------------------------------------------------------
    def upload_document(self, document_id: str, text: str) -> None:
        with self._lock:
            self.documents[document_id] = text

    def extract_text(self, document_id: str) -> str:
        with self._lock:
            self._count("documents.extract", document_id)
            text = self.documents.get(document_id)
        if text is None:
            raise NonRetriableError(f"no document {document_id!r}")
        return text

    def fail_embeddings(self, document_id: str, times: int) -> None:
        """Make the embedding model fail ``times`` times for this document (a rate limit)."""
        with self._lock:
            self.embed_failures[document_id] = times

    def embed(self, document_id: str, chunks: list[str]) -> list[list[float]]:
        with self._lock:
            self._count("ai.embed", document_id)
            if self.embed_failures.get(document_id, 0) > 0:
                self.embed_failures[document_id] -= 1
                raise ServiceUnavailable("embedding model overloaded, try again")
        # A deterministic 8-dimensional "embedding": good enough to store and compare.
        return [[b / 255 for b in hashlib.sha256(chunk.encode()).digest()[:8]] for chunk in chunks]

    def store_vectors(self, document_id: str, chunks: list[str], vectors: list[list[float]]) -> int:
        with self._lock:
            self._count("vectors.upsert", document_id)
            self.vectors[document_id] = [{"text": c, "vector": v} for c, v in zip(chunks, vectors)]
            return len(chunks)


services = Services()
