"""The example app: all five workflows, served by one Flask endpoint at /api/inngest.

    INNGEST_DEV=http://127.0.0.1:8288 python -m examples.app      # what `make dev` runs

Any Inngest-compatible server can drive it; `stepline dev -u http://127.0.0.1:8289/api/inngest`
keeps it synced.
"""

from __future__ import annotations

import os

import flask

from examples import daily_digest, document_pipeline, order_processing, payment_webhook, welcome_drip  # noqa: F401
from examples.client import client
from examples.services import services
from stepline import serve_flask

app = flask.Flask(__name__)
serve_flask(app, client)


@app.get("/")
def index() -> dict:
    """What the fake services did so far: the emails sent, charges, shipments, orders."""
    return {
        "functions": [f.composite_id for f in client.functions],
        "outbox": services.outbox[-20:],
        "charges": services.charges[-20:],
        "shipments": services.shipments[-20:],
        "orders": services.orders,
        "documents": {d: len(v) for d, v in services.vectors.items()},
    }


@app.post("/documents/<document_id>")
def upload(document_id: str) -> dict:
    """Store a document's text in the fake document store, so the pipeline can extract it."""
    services.upload_document(document_id, flask.request.get_data(as_text=True))
    return {"document_id": document_id}


if __name__ == "__main__":
    os.environ.setdefault("INNGEST_DEV", "http://127.0.0.1:8288")
    app.run(host="127.0.0.1", port=int(os.environ.get("PORT", "8289")), threaded=True)
