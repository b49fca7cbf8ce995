"""Declares one function id twice on one client: the SDK stops the import."""

from __future__ import annotations

import flask

from stepline import Client, Context, serve_flask

client = Client("check-duplicate", dev=True)


@client.function("nightly-report", trigger="reports/requested", retries=1, concurrency=1)
def nightly_report(ctx: Context) -> str:
    return ctx.step.run("build-report", lambda: "report")


@client.function("nightly-report", trigger="reports/requested", retries=1, concurrency=1)
def nightly_report_v2(ctx: Context) -> str:
    return ctx.step.run("build-report", lambda: "report v2")


app = flask.Flask(__name__)
serve_flask(app, client)
