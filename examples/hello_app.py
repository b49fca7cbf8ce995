"""The example app `make dev` serves: a plain Flask app on the official `inngest` Python SDK.

It knows nothing about Stepline: INNGEST_DEV points the SDK at it, as it would at any
Inngest-compatible server.

    INNGEST_DEV=http://127.0.0.1:8288 python examples/hello_app.py
"""

from __future__ import annotations

import datetime
import os

import flask
import inngest
import inngest.flask

client = inngest.Inngest(app_id="hello-app", logger=None)


@client.create_function(fn_id="greet", trigger=inngest.TriggerEvent(event="hello/greet"), retries=3)
def greet(ctx: inngest.ContextSync) -> dict:
    name = ctx.event.data.get("name", "world")
    greeting = ctx.step.run("compose-greeting", lambda: f"Hello, {name}!")
    ctx.step.sleep("pause-for-effect", datetime.timedelta(seconds=2))
    sent_at = ctx.step.run("send-greeting", lambda: datetime.datetime.now(datetime.timezone.utc).isoformat())
    return {"greeting": greeting, "sent_at": sent_at}


app = flask.Flask(__name__)
inngest.flask.serve(app, client, [greet])

if __name__ == "__main__":
    os.environ.setdefault("INNGEST_DEV", "http://127.0.0.1:8288")
    app.run(host="127.0.0.1", port=int(os.environ.get("PORT", "8289")), threaded=True)
