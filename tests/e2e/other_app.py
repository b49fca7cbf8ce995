"""A second app on the official Python SDK, for invokes that cross apps."""

from __future__ import annotations

import argparse

import flask
import inngest
import inngest.flask

client = inngest.Inngest(app_id="other-app", logger=None)


@client.create_function(fn_id="remote-double", trigger=inngest.TriggerEvent(event="other/unused"))
def remote_double(ctx: inngest.ContextSync) -> dict:
    value = ctx.step.run("double", lambda: ctx.event.data.get("value", 0) * 2)
    return {"remote": True, "doubled": value}


app = flask.Flask(__name__)
inngest.flask.serve(app, client, [remote_double])

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    app.run(host="127.0.0.1", port=parser.parse_args().port, threaded=True)
