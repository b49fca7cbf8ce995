"""An app on the official `inngest` Python SDK in production (cloud) mode, as a user would point
it at a deployed Stepline: INNGEST_BASE_URL is the stack's API URL and INNGEST_SIGNING_KEY the
value of its signing key secret. No INNGEST_DEV: requests are signed and verified.

GET /counters reports how many times each step body ran.

Run: INNGEST_BASE_URL=... INNGEST_SIGNING_KEY=... python tests/infra/deployed_app.py --port 8290
"""

from __future__ import annotations

import argparse
import datetime
import threading
from collections import Counter

import flask
import inngest
import inngest.flask

client = inngest.Inngest(app_id="deployed-app", logger=None)
app = flask.Flask(__name__)
_counts: Counter[str] = Counter()
_lock = threading.Lock()


def bump(name: str) -> int:
    with _lock:
        _counts[name] += 1
        return _counts[name]


@client.create_function(fn_id="two-steps", trigger=inngest.TriggerEvent(event="deploy/check"))
def two_steps(ctx: inngest.ContextSync) -> dict:
    first = ctx.step.run("first", lambda: bump("first") and ctx.event.data["n"] + 1)
    second = ctx.step.run("second", lambda: bump("second") and first * 10)
    return {"first": first, "second": second}


@client.create_function(fn_id="big-output", trigger=inngest.TriggerEvent(event="deploy/big"))
def big_output(ctx: inngest.ContextSync) -> int:
    # Over the runtime's inline limit: the memo goes to the payload bucket.
    blob = ctx.step.run("blob", lambda: bump("blob") and "x" * ctx.event.data["bytes"])
    return len(blob)


@client.create_function(fn_id="long-nap", trigger=inngest.TriggerEvent(event="deploy/nap"))
def long_nap(ctx: inngest.ContextSync) -> str:
    ctx.step.sleep("nap", datetime.timedelta(hours=2))
    return "rested"


@client.create_function(fn_id="nightly", trigger=inngest.TriggerCron(cron="0 3 * * *"))
def nightly(ctx: inngest.ContextSync) -> str:
    return "done"


inngest.flask.serve(app, client, [two_steps, big_output, long_nap, nightly])


@app.get("/counters")
def counters() -> dict:
    with _lock:
        return dict(_counts)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app.run(host="127.0.0.1", port=args.port, threaded=True)
