"""The chaos workload's checkpointing shape: an app on Stepline's own SDK (Werkzeug, WSGI), whose
calls run their steps inline and stream each result back (docs/steps/checkpointing.md).

As in tests/chaos/app.py, every successful step body returns a fresh nonce and records it, keyed
by (run id, step name). Records go to a file (LEDGER_FILE), one JSON line each, because this app
also crashes on purpose: the step the event names in ``crash_at`` kills the process mid-step
(once per run), after recording its nonce as ``crashed``; the harness starts it again. The
app also records every call whose checkpoint stream was cut before its last line (``aborted``,
with the run id): a step that finished after the cut never reached the executor. Every entry
names the process that wrote it: a crash also cuts the streams of other runs that process was
serving.

Run: INNGEST_DEV=http://127.0.0.1:8288 LEDGER_FILE=/tmp/ledger python -m tests.chaos.own_app --port 8291
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import threading
import uuid
from pathlib import Path
from typing import Any

from stepline import Client, Context, serve_wsgi

APP_ID = "chaos-own"
LEDGER = Path(os.environ.get("LEDGER_FILE", "chaos-own-ledger.jsonl"))

client = Client(APP_ID, logger=None)
_lock = threading.Lock()


def record(entry: dict[str, Any]) -> None:
    with _lock, LEDGER.open("a") as out:
        out.write(json.dumps({**entry, "pid": os.getpid()}) + "\n")
        out.flush()


def _crashed_before() -> set[str]:
    if not LEDGER.exists():
        return set()
    return {e["k"] for e in map(json.loads, LEDGER.read_text().splitlines()) if "crashed" in e}


_CRASHED = _crashed_before()


def effect(ctx: Context, step: str, *, flaky: bool = False):
    key = f"{ctx.run_id}/{step}"

    def body() -> str:
        if flaky and not any(
            e.get("k") == key and "failed" in e for e in map(json.loads, LEDGER.read_text().splitlines())
        ):
            record({"k": key, "failed": True})
            raise RuntimeError("first attempt fails on purpose")
        nonce = f"n-{uuid.uuid4().hex}"
        if ctx.event.data.get("crash_at") == step and key not in _CRASHED:
            record({"k": key, "crashed": nonce})
            os._exit(1)  # mid-step: this execution's result never leaves the process
        record({"k": key, "n": nonce})
        return nonce

    return body


# Many retries: a crashed app is down until the harness has started it again.
@client.function("chaos-checkpointed", trigger="chaos/checkpointed", retries=20)
def checkpointed(ctx: Context) -> dict:
    """Steps checkpointed in one call, a failing step, a sleep, and steps after it."""
    out = {name: ctx.step.run(name, effect(ctx, name)) for name in ("a", "b", "c")}
    out["d"] = ctx.step.run("d", effect(ctx, "d", flaky=bool(ctx.event.data.get("flaky"))))
    ctx.step.sleep("nap", datetime.timedelta(seconds=1))
    out.update({name: ctx.step.run(name, effect(ctx, name)) for name in ("e", "f")})
    return out


class CutStreams:
    """WSGI middleware recording calls whose stream was closed before its end."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = _Replay(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        chunks = self.app(environ, start_response)
        if isinstance(chunks, list):
            return chunks
        try:
            run_id = json.loads(body)["ctx"]["run_id"]
        except (ValueError, KeyError, TypeError):
            run_id = ""
        return _Watched(chunks, run_id)


class _Replay:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self, size: int = -1) -> bytes:
        out, self.data = (self.data, b"") if size < 0 else (self.data[:size], self.data[size:])
        return out


class _Watched:
    def __init__(self, chunks: Any, run_id: str) -> None:
        self.chunks = iter(chunks)
        self.inner = chunks
        self.run_id = run_id
        self.done = False

    def __iter__(self) -> Any:
        return self

    def __next__(self) -> bytes:
        try:
            return next(self.chunks)
        except StopIteration:
            self.done = True
            raise

    def close(self) -> None:
        if not self.done:
            record({"aborted": self.run_id})
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()


def read_ledger(path: Path) -> tuple[dict[str, list[str]], set[str], set[str]]:
    """(run/step -> nonces that succeeded, nonces of executions a crash cut short or that
    finished in a process that crashed later, runs whose stream was cut), read from a ledger
    file by the audit."""
    done: dict[str, list[str]] = {}
    entries = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    crashed_pids = {e["pid"] for e in entries if "crashed" in e}
    in_crashed: set[str] = set()
    aborted: set[str] = set()
    for entry in entries:
        if "n" in entry:
            done.setdefault(entry["k"], []).append(entry["n"])
            if entry["pid"] in crashed_pids:
                in_crashed.add(entry["n"])
        elif "crashed" in entry:
            in_crashed.add(entry["crashed"])
        elif "aborted" in entry:
            aborted.add(entry["aborted"])
    return done, in_crashed, aborted


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    from werkzeug.serving import run_simple

    run_simple("127.0.0.1", args.port, CutStreams(serve_wsgi(client)), threaded=True)
