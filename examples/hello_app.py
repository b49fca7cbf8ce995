"""A one-function app on the official `inngest` Python SDK (Flask), for comparison with the
examples on Stepline's own SDK: it knows nothing about Stepline, and runs on it unchanged, as it
would on any Inngest-compatible server. `make dev` does not start it; run it beside `make dev`:

    INNGEST_DEV=http://127.0.0.1:8288 python examples/hello_app.py     # serves :3000/api/inngest

Port 3000 is one `stepline dev` looks at by itself, so it finds and syncs the app without `-u`.
Then `stepline send hello/greet '{"name": "Ada"}'`.
"""

from __future__ import annotations

import datetime
import os

import flask
import inngest
import inngest.flask

client = inngest.Inngest(app_id="hello-app", logger=None)


@client.create_function(
    fn_id="greet",
    trigger=inngest.TriggerEvent(event="hello/greet"),
    retries=3,
    concurrency=[inngest.Concurrency(limit=10)],
)
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
    app.run(host="127.0.0.1", port=int(os.environ.get("PORT", "3000")), threaded=True)
