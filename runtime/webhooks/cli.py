"""``stepline webhooks list|set|delete``: webhook sources through the REST API (``/v1/webhooks``),
with the operator key, as the other operating commands (``stepline.cli_ops``)."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from typing import Any, TextIO

from stepline.rest_client import ApiFailure, Client

PROVIDERS = ("stripe", "github", "standard", "shopify", "hmac")


class UsageError(Exception):
    """A flag that cannot be used; the message names it."""


def source_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The configuration `set` sends, from its flags; the server checks the rest."""
    body: dict[str, Any] = {"source": args.source, "provider": args.provider}
    if bool(args.secret_id) == bool(args.secret_env):
        raise UsageError("give --secret-id (a Secrets Manager secret) or --secret-env (a variable holding it)")
    if args.secret_id:
        body["secret_id"] = args.secret_id
    else:
        value = os.environ.get(args.secret_env)
        if not value:
            raise UsageError(f"--secret-env: ${args.secret_env} is not set")
        body["secret"] = value
    if args.replay_window is not None:
        body["replay_window_s"] = args.replay_window
    for flag, key, text in (("--mapping", "mapping", args.mapping), ("--hmac", "hmac", args.hmac)):
        if text is None:
            continue
        try:
            value = json.loads(text)
        except ValueError:
            raise UsageError(f"{flag}: not JSON") from None
        if key == "hmac":
            body["hmac"] = value
        else:
            body["transform"] = {"mapping": value}
    if args.cel is not None:
        if "transform" in body:
            raise UsageError("give --cel or --mapping, not both")
        body["transform"] = {"cel": args.cel}
    return body


def cmd_webhooks(client: Client, args: argparse.Namespace, out: TextIO) -> int:

    try:
        if args.webhooks_command == "set":
            reply = client.call("POST", "/v1/webhooks", source_from_args(args))["data"]
            out.write(f"webhook source {reply['source']} ({reply['provider']}): POST /webhooks/{reply['source']}\n")
            return 0
    except UsageError as exc:
        raise ApiFailure(str(exc)) from None
    if args.webhooks_command == "delete":
        client.call("DELETE", f"/v1/webhooks/{args.source}")
        out.write(f"webhook source {args.source} removed\n")
        return 0
    sources = client.call("GET", "/v1/webhooks")["data"]
    if args.json:
        out.write(json.dumps(sources, indent=2) + "\n")
        return 0
    if not sources:
        out.write("no webhook sources (stepline webhooks set NAME --provider ...)\n")
        return 0
    rows = [["SOURCE", "PROVIDER", "WINDOW", "SECRET", "ORIGIN", "REFUSED"]]
    for s in sources:
        refused = ", ".join(f"{reason} {n}" for reason, n in sorted(s["rejected"].items()) if n) or "0"
        rows.append(
            [
                s["source"],
                s["provider"],
                f"{s['replay_window_s']} s",
                s.get("secret_id") or "inline",
                s["origin"],
                refused,
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() + "\n")
    return 0


def add_webhooks_parser(sub: Any, common: argparse.ArgumentParser, run: Callable[[argparse.Namespace], int]) -> None:
    p = sub.add_parser("webhooks", help="verified webhook sources: list, set, delete (docs/webhooks.md)")
    cmds = p.add_subparsers(dest="webhooks_command", required=True)
    q = cmds.add_parser("list", parents=[common], help="sources, with the deliveries each refused")
    q.add_argument("--json", action="store_true", help="print the data of GET /v1/webhooks")
    q.set_defaults(func=run)
    q = cmds.add_parser("set", parents=[common], help="configure a source (created or replaced)")
    q.add_argument("source", help="its name: deliveries go to POST /webhooks/NAME")
    q.add_argument("--provider", required=True, choices=PROVIDERS)
    q.add_argument("--secret-id", help="the Secrets Manager secret holding the secret (deployed)")
    q.add_argument("--secret-env", metavar="VAR", help="an environment variable holding the secret (dev, start)")
    q.add_argument("--replay-window", type=int, metavar="SECONDS", help="the provider's default unless given")
    q.add_argument("--cel", metavar="EXPR", help="a CEL transform returning an event or a list of them")
    q.add_argument("--mapping", metavar="JSON", help='a JSON path mapping, e.g. {"name_path": "$.type"}')
    q.add_argument("--hmac", metavar="JSON", help='the generic scheme\'s headers, e.g. {"signature_header": "x-sig"}')
    q.set_defaults(func=run)
    q = cmds.add_parser("delete", parents=[common], help="remove a source")
    q.add_argument("source")
    q.set_defaults(func=run)
