"""An app on the official `inngest` Python SDK whose wait has no timeout (the SDK only refuses it
when a run reaches the wait), for the fix hints written in that SDK's syntax."""

from __future__ import annotations

import flask
import inngest
import inngest.flask

client = inngest.Inngest(app_id="check-official-wait", logger=None)


@client.create_function(fn_id="await-approval", trigger=inngest.TriggerEvent(event="docs/approval.requested"))
def await_approval(ctx: inngest.ContextSync) -> bool:
    approved = ctx.step.wait_for_event("wait-for-approval", event="docs/approved")  # type: ignore[call-arg]
    return approved is not None


app = flask.Flask(__name__)
inngest.flask.serve(app, client, [await_approval])
