"""Serves its client from an app factory: the handler exists only once create_app() runs."""

from __future__ import annotations

import flask

from stepline import Client, Context, serve_flask

client = Client("check-factory", dev=True)


@client.function("send-welcome", trigger="user/signed.up", retries=2, concurrency=5)
def send_welcome(ctx: Context) -> str:
    return ctx.step.run("send-email", lambda: "sent")


def create_app() -> flask.Flask:
    app = flask.Flask(__name__)
    serve_flask(app, client)
    return app
