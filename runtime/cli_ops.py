"""`stepline send|runs|run|cancel|replay|tail|dlq|sweep|erase`: operating Stepline from a terminal, through the
REST API (the same routes the dashboard uses).

They talk to `stepline dev` on 127.0.0.1:8288 unless told otherwise: ``--url`` (or
STEPLINE_URL) points them at a deployed API, and ``--operator-key`` (or STEPLINE_OPERATOR_KEY)
authenticates them there; the apps' signing key (``--signing-key``) is enough for the commands
that only read. The key never leaves this process: requests carry its hash as the bearer, as
the SDKs do.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.parse
from datetime import datetime
from typing import Any, TextIO

from stepline.rest_client import ApiFailure, Client
from stepline.webhooks.cli import add_webhooks_parser, cmd_webhooks

DEFAULT_URL = "http://127.0.0.1:8288"
TERMINAL = ("Completed", "Failed", "Cancelled")


# -- formatting ----------------------------------------------------------------------------------
def _ms(text: str | None) -> int | None:
    if not text:
        return None
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def _clock(text: str | None) -> str:
    ms = _ms(text)
    if ms is None:
        return "-"
    when = datetime.fromtimestamp(ms / 1000)
    # A sleep or wait may end days from now: say which day when it is not today.
    return when.strftime("%H:%M:%S" if when.date() == datetime.now().date() else "%Y-%m-%d %H:%M:%S")


def duration(ms: int | None) -> str:
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms}ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f}s"
    if ms < 3_600_000:
        return f"{ms // 60_000}m{(ms % 60_000) // 1000:02d}s"
    return f"{ms // 3_600_000}h{(ms % 3_600_000) // 60_000:02d}m"


def _run_duration(run: dict[str, Any], now_ms: int) -> int | None:
    start = _ms(run.get("run_started_at"))
    end = _ms(run.get("ended_at")) or now_ms
    return None if start is None else max(0, end - start)


def _short(value: Any, width: int = 60) -> str:
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False) if not isinstance(value, str) else value
    return text if len(text) <= width else text[: width - 1] + "…"


def _table(rows: list[list[str]], out: TextIO) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)).rstrip() + "\n")


def _now_ms() -> int:
    return int(time.time() * 1000)


def _origin(run: dict[str, Any]) -> str:
    origin = run.get("origin") or {}
    if origin.get("kind") == "replay":
        return f"replay of {origin.get('run_id')}"
    if origin.get("kind") == "rerun":
        return f"rerun of {origin.get('run_id')} from step {origin.get('step_name') or origin.get('step_id')}"
    return ""


def waiting_on(run: dict[str, Any], missed: list[dict[str, Any]] | None = None) -> str:
    """What a live run is doing now, from its open steps: "sleeping 'nap' until 12:00:03".
    ``missed`` are sleeps and waits that began and ended between two looks: they are named too
    ("slept 'nap' for 3.0s"), so a follower never loses one to a slow poll."""
    steps = run.get("steps") or []
    done = sum(1 for s in steps if s["status"] in ("Completed", "Failed"))
    now = [s for s in steps if s["status"] in ("Sleeping", "Waiting", "Running")]
    parts = [_settled_wait(step) for step in missed or []]
    for step in now:
        given = step.get("input") or {}
        if step["status"] == "Sleeping":
            parts.append(f"sleeping {step['name']!r} until {_clock(given.get('wake_at'))}")
        elif step["kind"] == "wait":
            parts.append(f"waiting for {given.get('event')!r} until {_clock(given.get('expires_at'))}")
        elif step["kind"] == "signal":
            parts.append(f"waiting for signal {given.get('signal')!r} until {_clock(given.get('expires_at'))}")
        elif step["kind"] == "invoke":
            parts.append(f"waiting for {given.get('function_id')!r}")
        else:
            parts.append(f"running {step['name']!r}")
    return f"{done} step{'s' if done != 1 else ''} done" + (", " + "; ".join(parts) if parts else "")


def _settled_wait(step: dict[str, Any]) -> str:
    took = duration(step["duration_ms"]) if isinstance(step.get("duration_ms"), int) else "?"
    if step["kind"] == "sleep":
        return f"slept {step['name']!r} for {took}"
    given = step.get("input") or {}
    target = given.get("event") if step["kind"] == "wait" else given.get("function_id")
    return f"waited for {target!r} for {took}"


def missed_waits(run: dict[str, Any], shown: set[str]) -> list[dict[str, Any]]:
    """Settled sleeps, event waits and invokes of ``run`` that ``shown`` (the step ids a follower has
    already reported open or settled) does not hold; adds every such step id, open or settled, to it."""
    missed = []
    for step in run.get("steps") or []:
        if step["kind"] not in ("sleep", "wait", "invoke") or step["step_id"] in shown:
            continue
        shown.add(step["step_id"])
        if step["status"] in ("Completed", "Failed"):
            missed.append(step)
    return missed


def render_timeline(run: dict[str, Any], out: TextIO, width: int = 28) -> None:
    now = _now_ms()
    out.write(f"run       {run['run_id']}  {run['status']}\n")
    out.write(f"function  {run['function_id']}\n")
    events = run.get("events") or []
    if events:
        out.write(f"event     {events[0].get('name')}  {run.get('event_id')}\n")
    if _origin(run):
        out.write(f"origin    {_origin(run)}\n")
    out.write(
        f"started   {run.get('run_started_at')}   ended {run.get('ended_at') or '-'}"
        f"   took {duration(_run_duration(run, now))}\n"
    )
    steps = run.get("steps") or []
    out.write("\n")
    if not steps:
        out.write("  (no steps yet)\n")
    else:
        # The axis is this run's own time. A step a rerun copied ran in the original run, before
        # this one began: it is shown at the time it first ran, off the axis.
        start = _ms(run.get("run_started_at")) or now
        end = _ms(run.get("ended_at")) or now
        for step in steps:
            if not step.get("copied_from"):
                end = max(end, _ms(step.get("ended_at")) or 0)
        span = max(1, end - start)
        rows = [["#", "STEP", "KIND", "STATUS", "TRIES", "AT", "TOOK", "TIMELINE"]]
        for index, step in enumerate(steps, 1):
            s = _ms(step.get("started_at"))
            e = _ms(step.get("ended_at")) or (now if step["status"] not in TERMINAL else s)
            bar = ""
            if step.get("copied_from"):
                bar = "|" + "memoized".center(width) + "|"
            elif s is not None:
                s = max(s, start)
                left = min(int((s - start) / span * width), width - 1)
                length = max(1, int((max(e or s, s) - s) / span * width))
                bar = "|" + " " * left + "=" * min(length, width - left) + " " * max(0, width - left - length) + "|"
            if s is None:
                at = "-"
            elif step.get("copied_from"):
                at = _clock(step.get("started_at"))  # when it first ran
            else:
                at = f"+{duration(s - start)}"
            rows.append(
                [
                    str(index),
                    step["name"],
                    step["kind"],
                    step["status"],
                    str(step["attempts"]) if step.get("attempts") else "-",
                    at,
                    duration(step.get("duration_ms"))
                    if step.get("ended_at")
                    else (f"{duration(now - s)}…" if s is not None and step["status"] not in TERMINAL else "-"),
                    bar,
                ]
            )
        _table(rows, out)
        out.write("\n")
        for index, step in enumerate(steps, 1):
            if "error" in step:
                error = step["error"] or {}
                out.write(f"  {index}. {step['name']}: {error.get('name', 'Error')}: {error.get('message', '')}\n")
            elif step.get("timed_out"):
                out.write(
                    f"  {index}. {step['name']}: timed out waiting for {(step.get('input') or {}).get('event')!r}\n"
                )
            elif step.get("input") and step["status"] not in ("Completed",):
                out.write(f"  {index}. {step['name']}: {_short(step['input'], 90)}\n")
            if step.get("copied_from"):
                out.write(f"  {index}. {step['name']}: result copied from run {step['copied_from']}\n")
    if run["status"] == "Running":
        out.write(f"now       {waiting_on(run)}\n")
    if run.get("output") is not None:
        out.write(f"output    {_short(run['output'], 200)}\n")
    if run.get("error"):
        error = run["error"]
        out.write(f"error     {error.get('name', 'Error')}: {error.get('message', '')}\n")


# -- commands ------------------------------------------------------------------------------------
def cmd_send(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    try:
        data = json.loads(args.data) if args.data else {}
    except ValueError as exc:
        raise ApiFailure(f"DATA: not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ApiFailure('DATA: expected a JSON object, like \'{"user_id": "u-1"}\'')
    event: dict[str, Any] = {"name": args.name, "data": data}
    if args.id:
        event["id"] = args.id
    reply = client.call("POST", "/v1/events", event)
    for event_id in reply["ids"]:
        out.write(f"{event_id}\n")
    return 0


def cmd_signal(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    try:
        data = json.loads(args.data) if args.data else None
    except ValueError as exc:
        raise ApiFailure(f"DATA: not JSON ({exc})") from None
    reply = client.call("POST", "/v1/signals", {"signal": args.name, "data": data})
    out.write(f"{reply['data']['run_id']}\n")
    return 0


def cmd_runs(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    reply = client.call("GET", "/v1/runs", function_id=args.function, status=args.status, limit=args.limit)
    if args.json:
        # The reply as the API sent it: the runs under "data", and the "cursor" of the next page.
        out.write(json.dumps(reply, indent=2) + "\n")
        return 0
    runs = reply["data"]
    if not runs:
        out.write("no runs\n")
        return 0
    now = _now_ms()
    rows = [["RUN", "STATUS", "FUNCTION", "EVENT", "STARTED", "TOOK", ""]]
    for run in runs:
        rows.append(
            [
                run["run_id"],
                run["status"],
                run["function_id"],
                run.get("event_name") or "-",
                _clock(run.get("run_started_at")),
                duration(_run_duration(run, now)),
                _origin(run),
            ]
        )
    _table(rows, out)
    return 0


def cmd_run(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    run = client.call("GET", f"/v1/runs/{_q(args.run_id)}")["data"]
    if args.json:
        out.write(json.dumps(run, indent=2) + "\n")
    else:
        render_timeline(run, out)
    return 0


def cmd_cancel(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    run = client.call("DELETE", f"/v1/runs/{_q(args.run_id)}")["data"]
    if run["status"] == "Cancelled":
        out.write(f"cancelled {run['run_id']}\n")
        return 0
    out.write(f"{run['run_id']} had already ended: {run['status']}\n")
    return 1


def cmd_replay(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    if args.from_step:
        original = client.call("GET", f"/v1/runs/{_q(args.run_id)}")["data"]
        steps = original.get("steps") or []
        match = [s for s in steps if args.from_step in (s["step_id"], s["name"])]
        if not match:
            names = ", ".join(s["name"] for s in steps) or "none"
            raise ApiFailure(f"--from-step: run {args.run_id} has no step {args.from_step!r} (steps: {names})")
        run = client.call("POST", f"/v1/runs/{_q(args.run_id)}/rerun", {"step_id": match[0]["step_id"]})["data"]
    else:
        run = client.call("POST", f"/v1/runs/{_q(args.run_id)}/replay")["data"]
    out.write(f"{run['run_id']}\n")
    return 0


def activity(run: dict[str, Any]) -> str:
    """One word for what a live run is doing, from its steps: "started" while none has reported,
    else "sleeping", "waiting" (an event or an invoked function) or "running"."""
    steps = run.get("steps") or []
    if not steps:
        return "started"
    statuses = {s["status"] for s in steps}
    if "Sleeping" in statuses:
        return "sleeping"
    if "Waiting" in statuses:
        return "waiting"
    return "running"


def cmd_tail(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    """Follow runs: one line when a run starts, when it ends, and when a live run moves on
    (a step done, a sleep or wait begun), until interrupted. A run that began before the last
    look (already going when tail started) is named by what it is doing, not "started"."""
    seen: dict[str, str] = {}  # run id -> last status line state
    progress: dict[str, str] = {}
    shown: dict[str, set[str]] = {}  # run id -> ids of the sleeps and waits already reported
    first = True
    looked_ms: int | None = None  # the server's clock at the previous look
    deadline = time.monotonic() + args.seconds if args.seconds else None
    out.write(f"following runs on {client.url} (Ctrl-C to stop)\n")
    out.flush()
    try:
        while deadline is None or time.monotonic() < deadline:
            reply = client.call("GET", "/v1/runs", function_id=args.function, limit=50)
            runs = reply["data"]
            for run in reversed(runs):  # oldest first, so lines come in order
                run_id, status = run["run_id"], run["status"]
                before = seen.get(run_id)
                seen[run_id] = status
                if first and status in TERMINAL:
                    continue  # ended before we started watching
                label = f"{run_id}  {run['function_id']}"
                detail = client.call("GET", f"/v1/runs/{_q(run_id)}")["data"] if status == "Running" else None
                if detail is None and before == "Running" and status != before:
                    # Ended since the last look: name the sleeps and waits it passed unseen.
                    ended = client.call("GET", f"/v1/runs/{_q(run_id)}")["data"]
                    missed = missed_waits(ended, shown.setdefault(run_id, set()))
                    if missed:
                        _line(out, f"progress   {label}  {waiting_on(ended, missed)}")
                if before is None:
                    extra = f"  ({_origin(run)})" if _origin(run) else ""
                    event = f"  on {run['event_name']}" if run.get("event_name") else ""
                    began = _ms(run.get("created_at") or run.get("run_started_at"))
                    new_since = looked_ms is not None and began is not None and began >= looked_ms
                    word = "started" if new_since or detail is None else activity(detail)
                    now = f"  {waiting_on(detail)}" if detail is not None and word != "started" else ""
                    _line(out, f"{word:<10} {label}{event}{extra}{now}")
                    if detail is not None and word != "started":
                        # Already going when tail began: what it did before is not news.
                        missed_waits(detail, shown.setdefault(run_id, set()))
                        progress[run_id] = waiting_on(detail)
                if detail is not None:
                    missed = missed_waits(detail, shown.setdefault(run_id, set()))
                    now = waiting_on(detail)
                    if progress.get(run_id) != now or missed:
                        progress[run_id] = now
                        _line(out, f"progress   {label}  {waiting_on(detail, missed)}")
                elif before != status:
                    took = duration(_run_duration(run, _now_ms()))
                    what = {"Completed": "completed", "Failed": "failed", "Cancelled": "cancelled"}[status]
                    tail = ""
                    if status == "Failed" and run.get("error"):
                        tail = f": {run['error'].get('message', '')}"
                    _line(out, f"{what:<10} {label}  after {took}{tail}")
            first = False
            looked_ms = _ms((reply.get("metadata") or {}).get("fetched_at"))
            time.sleep(args.interval)
    except KeyboardInterrupt:
        pass
    return 0


def cmd_dlq(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    if args.dlq_command == "list":
        entries = client.call("GET", "/v1/dead-letters", limit=args.limit)["data"]
        if args.json:
            out.write(json.dumps(entries, indent=2) + "\n")
        elif not entries:
            out.write("no dead letters\n")
        else:
            rows = [["ID", "KIND", "RUN", "DELIVERIES", "DEAD AT", "REASON"]]
            for entry in entries:
                rows.append(
                    [
                        entry["id"],
                        entry.get("kind") or "-",
                        entry.get("run_id") or "-",
                        str(entry["receive_count"]),
                        _clock(entry.get("dead_at")),
                        _short(entry["reason"], 100),
                    ]
                )
            _table(rows, out)
        return 0
    if args.all == bool(args.ids):
        raise ApiFailure("give dead-letter IDs (see `stepline dlq list`) or --all, not both")
    body = {"all": True} if args.all else {"ids": args.ids}
    reply = client.call("POST", "/v1/dead-letters/redrive", body)["data"]
    moved, reopened = reply["redriven"], reply["runs_reopened"]
    out.write(
        f"redriven {moved} message{'s' if moved != 1 else ''}; reopened {len(reopened)} run"
        f"{'s' if len(reopened) != 1 else ''}\n"
    )
    for run_id in reopened:
        out.write(f"  {run_id}\n")
    if reply.get("more"):
        # Not repeated here: a message that can never succeed would be back in the DLQ at once.
        out.write("more may be left: run `stepline dlq redrive --all` again\n")
    if args.ids and moved < len(args.ids):
        out.write("some ids were not in the dead-letter queue (see `stepline dlq list`)\n")
        return 1
    return 0


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count != 1 else ''}"


def cmd_sweep(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    """Run the sweeper now, calling again while a call stops at its limit and moves runs on."""
    body: dict[str, Any] = {}
    if args.grace is not None:
        if args.grace < 0:
            raise ApiFailure(f"--grace: expected seconds, 0 or more, got {args.grace}")
        body["grace_s"] = args.grace
    totals: dict[str, int] = {"found": 0, "rearmed": 0, "in_hand": 0, "skipped": 0, "errors": 0}
    sent: dict[str, int] = {}
    while True:
        report = client.call("POST", "/v1/sweep", body)["data"]
        for key in totals:
            totals[key] += report[key]
        for kind, count in report["sent"].items():
            sent[kind] = sent.get(kind, 0) + count
        if not report["more"] or report["rearmed"] + report["in_hand"] == 0:
            break
    what = ", ".join(f"{kind} {count}" for kind, count in sorted(sent.items()))
    out.write(
        f"found {_plural(totals['found'], 'overdue run')}; re-armed {_plural(totals['rearmed'], 'run')}"
        + (f" (sent {what})" if what else "")
        + "\n"
    )
    if totals["in_hand"]:
        out.write(f"{_plural(totals['in_hand'], 'run')} with claimed steps only moved on\n")
    if totals["skipped"]:
        out.write(f"{_plural(totals['skipped'], 'run')} moved on by themselves meanwhile\n")
    if totals["errors"]:
        out.write(f"{_plural(totals['errors'], 'run')} failed (see the server's log; the next sweep tries again)\n")
        return 1
    return 0


def _line(out: TextIO, text: str) -> None:
    out.write(f"{datetime.now().strftime('%H:%M:%S')}  {text}\n")
    out.flush()


def _q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def cmd_erase(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    """Erase a run, an event with its runs, or what a filter matches in a window (calling again
    while the API says there is more)."""
    chosen = [flag for flag, value in (("--run", args.run), ("--event", args.event), ("--if", args.expr)) if value]
    if len(chosen) != 1:
        raise ApiFailure("give exactly one of --run, --event or --if (with --after and --before)")
    body: dict[str, Any]
    if args.run:
        body = {"run_id": args.run}
    elif args.event:
        body = {"event_id": args.event}
    else:
        if not (args.after and args.before):
            raise ApiFailure("--if needs --after and --before (RFC3339 or epoch ms): the window to look in")
        body = {"if": args.expr, "received_after": args.after, "received_before": args.before}
        if args.name:
            body["name"] = args.name
    totals: dict[str, int] = {}
    runs = events = 0
    while True:
        report = client.call("POST", "/v1/erasures", body)["data"]
        for key, count in report["erased"].items():
            totals[key] = totals.get(key, 0) + count
        runs += len(report["run_ids"])
        events += len(report["event_ids"])
        if not report["more"]:
            break
        body["cursor"] = report["cursor"]
    out.write(
        f"erased {_plural(runs, 'run')} and {_plural(events, 'event')}: "
        + ", ".join(f"{key} {count}" for key, count in totals.items())
        + "\n"
    )
    return 0


COMMANDS = {
    "send": cmd_send,
    "runs": cmd_runs,
    "run": cmd_run,
    "cancel": cmd_cancel,
    "replay": cmd_replay,
    "tail": cmd_tail,
    "dlq": cmd_dlq,
    "sweep": cmd_sweep,
    "erase": cmd_erase,
    "signal": cmd_signal,
    "webhooks": cmd_webhooks,
}


def _run(args: argparse.Namespace) -> int:
    out = sys.stdout
    try:
        client = Client(args.api_url, args.operator_key or args.signing_key)
        return COMMANDS[args.command](client, args, out)
    except ApiFailure as exc:
        print(f"stepline {args.command}: {exc}", file=sys.stderr)
        return 1


def add_ops_parsers(sub: Any) -> None:
    """Register the operating commands on the `stepline` parser's subcommands."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--url",
        dest="api_url",
        default=os.environ.get("STEPLINE_URL", DEFAULT_URL),
        help=f"the Stepline API (default $STEPLINE_URL or {DEFAULT_URL}, `stepline dev`)",
    )
    common.add_argument(
        "--operator-key",
        default=os.environ.get("STEPLINE_OPERATOR_KEY"),
        help="the deployment's operator key (default $STEPLINE_OPERATOR_KEY); dev needs none",
    )
    common.add_argument(
        "--signing-key",
        default=os.environ.get("STEPLINE_SIGNING_KEY"),
        help="the apps' signing key (default $STEPLINE_SIGNING_KEY): enough to read, not to steer runs",
    )

    p = sub.add_parser("send", parents=[common], help="send an event")
    p.add_argument("name", help="event name, e.g. shop/order.placed")
    p.add_argument("data", nargs="?", help="event data as a JSON object")
    p.add_argument("--id", help="event id (deduplicates for 24 h)")
    p.set_defaults(func=_run)

    p = sub.add_parser("signal", parents=[common], help="resume the run waiting for a signal (prints its run id)")
    p.add_argument("name", help="the signal, as the run's step.wait_for_signal / step.waitForSignal names it")
    p.add_argument("data", nargs="?", help="what the run receives, as JSON (default null)")
    p.set_defaults(func=_run)

    p = sub.add_parser("runs", parents=[common], help="list runs, newest first")
    p.add_argument("--function", help="function id")
    p.add_argument("--status", help="Running, Completed, Failed or Cancelled (comma-separated)")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--json", action="store_true", help="print the API's JSON reply (GET /v1/runs: data, cursor)")
    p.set_defaults(func=_run)

    p = sub.add_parser("run", parents=[common], help="one run with its step timeline")
    p.add_argument("run_id")
    p.add_argument("--json", action="store_true", help="print the run as JSON (the data of GET /v1/runs/ID)")
    p.set_defaults(func=_run)

    p = sub.add_parser("cancel", parents=[common], help="cancel a run")
    p.add_argument("run_id")
    p.set_defaults(func=_run)

    p = sub.add_parser("replay", parents=[common], help="run a run again with the same events (prints the new run id)")
    p.add_argument("run_id")
    p.add_argument("--from-step", help="rerun from this step (name or id), keeping the results of the steps before it")
    p.set_defaults(func=_run)

    p = sub.add_parser("dlq", help="poison messages: list the dead-letter queue, redrive from it")
    dlq = p.add_subparsers(dest="dlq_command", required=True)
    q = dlq.add_parser("list", parents=[common], help="dead letters with why each is there")
    q.add_argument("--limit", type=int, default=20, help="at most this many (1-100, default 20)")
    q.add_argument("--json", action="store_true", help="print the entries as JSON (the data of GET /v1/dead-letters)")
    q.set_defaults(func=_run)
    q = dlq.add_parser(
        "redrive", parents=[common], help="put dead letters back on the work queue; their failed runs go on"
    )
    q.add_argument("ids", nargs="*", metavar="ID", help="dead-letter ids, as `stepline dlq list` shows them")
    q.add_argument("--all", action="store_true", help="every dead letter")
    q.set_defaults(func=_run)

    p = sub.add_parser(
        "sweep",
        parents=[common],
        help="re-arm runs overdue with nothing moving them (runs every few minutes by itself)",
    )
    p.add_argument(
        "--grace",
        type=float,
        metavar="SECONDS",
        help="how long overdue a run must be (default: the server's sweep_grace_s, 20 minutes)",
    )
    p.set_defaults(func=_run)

    p = sub.add_parser(
        "erase",
        parents=[common],
        help="erase a run, an event with its runs, or the events a filter matches (data protection requests)",
    )
    p.add_argument("--run", metavar="RUN_ID", help="one run, with its steps and payloads")
    p.add_argument("--event", metavar="EVENT_ID", help="one event (its internal id) and every run it started")
    p.add_argument(
        "--if", dest="expr", metavar="CEL", help="events whose data match, e.g. 'event.data.user_id == \"u-1\"'"
    )
    p.add_argument("--after", help="with --if: received after this time (RFC3339 or epoch ms)")
    p.add_argument("--before", help="with --if: received before this time")
    p.add_argument("--name", help="with --if: only events of this name")
    p.set_defaults(func=_run)

    add_webhooks_parser(sub, common, _run)

    p = sub.add_parser("tail", parents=[common], help="follow runs as they start, progress and finish")
    p.add_argument("--function", help="only this function's runs")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between polls (default 1)")
    p.add_argument("--seconds", type=float, help="stop after this long (default: until Ctrl-C)")
    p.set_defaults(func=_run)
