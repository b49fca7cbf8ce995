"""The `stepline` command."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from stepline.check.cli import add_check_parser
from stepline.cli_ops import add_ops_parsers
from stepline.dev.discovery import POLL_INTERVAL_S, discovery_summary
from stepline.dev.keys import (
    EVENT_KEYS,
    OPERATOR_KEY,
    SIGNING_KEY,
    SIGNING_KEY_FALLBACK,
    KeyFlags,
    KeysError,
    resolve_keys,
)
from stepline.settings import Settings
from stepline.telemetry.logs import install_text

if TYPE_CHECKING:
    from stepline.dev.runtime import DevOptions, DevRuntime

# What `stepline dev` and `stepline start` run on beyond the SDK: the `server` extra.
SERVER_PACKAGES = ("boto3", "botocore", "aws_lambda_powertools", "cheroot")


def _server_missing(name: str) -> int | None:
    """None when the runtime can be imported; else the exit status, after saying in one line which
    extra brings it (an SDK-only install has the command but not the server)."""
    try:
        import stepline.dev.runtime  # noqa: F401
    except ModuleNotFoundError as err:
        if (err.name or "").split(".")[0] not in SERVER_PACKAGES:
            raise
        print(
            f"{name}: the runtime is not installed ({err.name} is missing): pip install 'stepline[server]'",
            file=sys.stderr,
            flush=True,
        )
        return 2
    return None


def _build_runtime(options: DevOptions, settings: Settings, name: str) -> DevRuntime | int:
    """The runtime, or the exit status after saying in one line why it cannot be built."""
    from stepline.dev.runtime import DevRuntime, MissingExtra

    try:
        return DevRuntime(options, settings)
    except MissingExtra as exc:
        print(f"{name}: {exc}", file=sys.stderr, flush=True)
        return 2
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        print(
            f"{name}: port {options.port} on {options.host} is in use (another {name}?): "
            "stop what listens there, or pass --port",
            file=sys.stderr,
            flush=True,
        )
        return 1


def _serve_until_signalled(runtime: DevRuntime, lines: Callable[[str], list[str]], name: str) -> int:
    """Start ``runtime``, say what it is (``lines`` of its URL), and serve until SIGTERM or SIGINT."""
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    runtime.start()
    for line in lines(runtime.url):
        print(f"{name}: {line}", flush=True)
    done.wait()
    print(f"{name}: stopping", flush=True)
    runtime.stop()
    return 0


def _options(
    args: argparse.Namespace,
    backend: str,
    *,
    poll_interval_s: float = 0.0,
    discover: bool = False,
    allowed_hosts: list[str] | None = None,
) -> DevOptions:
    from stepline.dev.runtime import DevOptions

    if args.db and os.path.dirname(args.db):
        os.makedirs(os.path.dirname(args.db), exist_ok=True)
    return DevOptions(
        host=args.host,
        port=args.port,
        db_path=args.db,
        backend=backend,
        app_urls=args.url or [],
        workers=args.workers,
        poll_interval_s=poll_interval_s,
        discover=discover,
        allowed_hosts=allowed_hosts or [],
    )


def _dev(args: argparse.Namespace) -> int:
    if (missing := _server_missing("stepline dev")) is not None:
        return missing
    settings = Settings.from_env()
    if settings.mode != "dev":
        settings = settings.model_copy(update={"mode": "dev"})
    options = _options(
        args,
        args.backend,
        poll_interval_s=args.poll_interval,
        discover=not args.no_discovery,
        allowed_hosts=args.allow_host or [],
    )
    runtime = _build_runtime(options, settings, "stepline dev")
    if isinstance(runtime, int):
        return runtime
    return _serve_until_signalled(
        runtime,
        lambda url: [
            f"listening on {url} (backend {args.backend}, state in {args.db})",
            "DEV MODE - no event keys, no signatures, no API auth. Never expose this port.",
            f"dashboard at {url}/ (REST API described at {url}/openapi.json)",
            *(f"syncing app {u}" for u in options.app_urls),
            *(
                [f"looking for apps at {discovery_summary()} (--no-discovery to stop)"]
                if runtime.watcher.discover
                else []
            ),
        ],
        "stepline dev",
    )


def _start(args: argparse.Namespace) -> int:
    if (missing := _server_missing("stepline start")) is not None:
        return missing
    flags = KeyFlags(
        args.signing_key, args.signing_key_fallback, args.event_key or [], args.keys_file, args.operator_key
    )
    try:
        keys = resolve_keys(flags, os.environ)
    except KeysError as exc:
        print(f"stepline start: {exc}", file=sys.stderr, flush=True)
        return 2
    settings = Settings.from_env().model_copy(update={"mode": "cloud", **keys.settings_values()})
    # Apps given with -u are synced once, at start; nothing else is looked for.
    runtime = _build_runtime(_options(args, "sqlite"), settings, "stepline start")
    if isinstance(runtime, int):
        return runtime
    fallback = ", a fallback signing key" if keys.signing_key_fallback else ""
    sources = ", ".join(sorted(set(keys.sources.values())))
    return _serve_until_signalled(
        runtime,
        lambda url: [
            f"listening on {url} (cloud mode: event keys, signed calls and bearer auth required)",
            f"state in {os.path.abspath(args.db)} (SQLite)",
            f"{len(keys.event_keys)} event key(s){fallback}; keys from {sources}",
            f"dashboard at {url}/ (asks for the operator key)"
            if keys.operator_key
            else f"no operator key ({OPERATOR_KEY}): cancel, replay, erase and the dashboard are refused",
            *(f"syncing app {u}" for u in runtime.options.app_urls),
        ],
        "stepline start",
    )


def _add_runtime_flags(parser: argparse.ArgumentParser, db_default: str, url_help: str) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8288)
    parser.add_argument("-u", "--url", action="append", help=url_help)
    parser.add_argument("--db", default=db_default, help=f"SQLite state file (default {db_default})")
    parser.add_argument("--workers", type=int, default=4, help="runs executed concurrently")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stepline", description="Durable functions on your own AWS account.")
    parser.add_argument("--log-level", default=os.environ.get("STEPLINE_LOG_LEVEL", "INFO"))
    sub = parser.add_subparsers(dest="command", required=True)

    dev = sub.add_parser("dev", help="run the whole runtime on this machine (SQLite state, port 8288)")
    _add_runtime_flags(dev, ".stepline/dev.db", "an app's serve URL, kept synced (repeatable)")
    dev.add_argument(
        "--no-discovery",
        action="store_true",
        help="do not look for apps on the usual local ports (3000, 3001, 5000, 8000, 8080)",
    )
    dev.add_argument(
        "--poll-interval",
        type=float,
        default=POLL_INTERVAL_S,
        metavar="SECONDS",
        help=f"how often apps are asked to sync again (default {POLL_INTERVAL_S:g}; 0: once, at start)",
    )
    dev.add_argument(
        "--backend",
        choices=["sqlite", "moto"],
        default="sqlite",
        help="sqlite (default) or moto: the AWS adapters against in-process moto",
    )
    dev.add_argument(
        "--allow-host",
        action="append",
        metavar="NAME",
        help="a Host name to answer besides loopback names and --host (repeatable; e.g. host.docker.internal)",
    )
    dev.set_defaults(func=_dev)

    start = sub.add_parser(
        "start",
        help="run the runtime on this machine in cloud mode: event keys, signed calls, bearer auth (SQLite state)",
    )
    _add_runtime_flags(start, ".stepline/stepline.db", "an app's serve URL, synced at start (repeatable)")
    start.add_argument("--signing-key", help=f"or {SIGNING_KEY}, or --keys-file (flags show in ps: prefer those)")
    start.add_argument(
        "--signing-key-fallback", help=f"the previous signing key, during a rotation ({SIGNING_KEY_FALLBACK})"
    )
    start.add_argument("--event-key", action="append", help=f"an accepted event key (repeatable; {EVENT_KEYS})")
    start.add_argument("--operator-key", help=f"the key for the CLI and the dashboard, never for apps ({OPERATOR_KEY})")
    start.add_argument(
        "--keys-file",
        help=f"a file of {SIGNING_KEY}=..., {SIGNING_KEY_FALLBACK}=..., {EVENT_KEYS}=..., {OPERATOR_KEY}=... lines",
    )
    start.set_defaults(func=_start)

    add_check_parser(sub)
    add_ops_parsers(sub)  # send, signal, runs, run, cancel, replay, tail, dlq, sweep, erase
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper())
    for handler in logging.getLogger().handlers:
        install_text(handler)  # lines about a run end with its run, function and trace ids
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
