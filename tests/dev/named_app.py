"""An app on the official `inngest` Python SDK whose app id, serve path and functions are given
on the command line, for the tests of how `stepline dev` finds and re-syncs apps.

Each function `<name>` is triggered by `named/<name>` and answers with its app id and port, so a
test can tell which process ran it.

    INNGEST_DEV=http://127.0.0.1:8288 python tests/dev/named_app.py --port 3000 --app-id shop \
        --path /x/inngest --function greet
"""

from __future__ import annotations

import argparse

import flask
import inngest
import inngest.flask


def build(app_id: str, path: str, names: list[str], port: int) -> flask.Flask:
    client = inngest.Inngest(app_id=app_id, logger=None)

    def make(name: str) -> inngest.Function:
        @client.create_function(fn_id=name, trigger=inngest.TriggerEvent(event=f"named/{name}"), retries=0)
        def fn(ctx: inngest.ContextSync) -> dict:
            return ctx.step.run("answer", lambda: {"app": app_id, "port": port})

        return fn

    app = flask.Flask(__name__)
    inngest.flask.serve(app, client, [make(n) for n in names], serve_path=path)
    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--app-id", required=True)
    parser.add_argument("--path", default="/api/inngest")
    parser.add_argument("--function", action="append", required=True)
    args = parser.parse_args()
    build(args.app_id, args.path, args.function, args.port).run(host="127.0.0.1", port=args.port, threaded=True)
