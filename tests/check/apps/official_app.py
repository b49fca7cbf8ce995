"""An app on the official `inngest` Python SDK: one function that passes the configuration
checks and one that fails them (and sleeps for a bare number of milliseconds).

    INNGEST_DEV=http://127.0.0.1:PORT python tests/check/apps/official_app.py --port 3000
"""

from __future__ import annotations

import argparse

import flask
import inngest
import inngest.flask

client = inngest.Inngest(app_id="check-official", logger=None)


@client.create_function(fn_id="refund-order", trigger=inngest.TriggerEvent(event="shop/refund.requested"))
def refund_order(ctx: inngest.ContextSync) -> str:
    ctx.step.sleep("wait-for-settlement", 3000)
    return ctx.step.run("issue-refund", lambda: "refunded")


@client.create_function(
    fn_id="send-invoice",
    trigger=inngest.TriggerEvent(event="shop/invoice.requested"),
    retries=2,
    concurrency=[inngest.Concurrency(limit=5)],
    idempotency="event.data.invoice_id",
)
def send_invoice(ctx: inngest.ContextSync) -> str:
    return ctx.step.run("render-invoice", lambda: "rendered")


app = flask.Flask(__name__)
inngest.flask.serve(app, client, [refund_order, send_invoice])

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    app.run(host="127.0.0.1", port=parser.parse_args().port, threaded=True)
