"""The `stepline` command."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import signal
import sys
import threading

from stepline.check.cli import add_check_parser
from stepline.cli_ops import add_ops_parsers
from stepline.dev.discovery import POLL_INTERVAL_S, discovery_summary
from stepline.settings import Settings


def _dev(args: argparse.Namespace) -> int:
    from stepline.dev.runtime import DevOptions, DevRuntime, MissingExtra

    if args.db and os.path.dirname(args.db):
        os.makedirs(os.path.dirname(args.db), exist_ok=True)
    settings = Settings.from_env()
    if settings.mode != "dev":
        settings = settings.model_copy(update={"mode": "dev"})
    options = DevOptions(
        host=args.host,
        port=args.port,
        db_path=args.db,
        backend=args.backend,
        app_urls=args.url or [],
        workers=args.workers,
        poll_interval_s=args.poll_interval,
        discover=not args.no_discovery,
    )
    try:
        runtime = DevRuntime(options, settings)
    except MissingExtra as exc:
        print(f"stepline dev: {exc}", file=sys.stderr, flush=True)
        return 2
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        print(
            f"stepline dev: port {args.port} on {args.host} is in use (another stepline dev?): "
            "stop what listens there, or pass --port",
            file=sys.stderr,
            flush=True,
        )
        return 1
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    runtime.start()
    print(f"stepline dev: listening on {runtime.url} (backend {args.backend}, state in {args.db})", flush=True)
    print("stepline dev: DEV MODE - no event keys, no signatures, no API auth. Never expose this port.", flush=True)
    print(f"stepline dev: dashboard at {runtime.url}/ (REST API described at {runtime.url}/openapi.json)", flush=True)
    for url in options.app_urls:
        print(f"stepline dev: syncing app {url}", flush=True)
    if runtime.watcher.discover:
        print(f"stepline dev: looking for apps at {discovery_summary()} (--no-discovery to stop)", flush=True)
    done.wait()
    print("stepline dev: stopping", flush=True)
    runtime.stop()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stepline", description="Durable functions on your own AWS account.")
    parser.add_argument("--log-level", default=os.environ.get("STEPLINE_LOG_LEVEL", "INFO"))
    sub = parser.add_subparsers(dest="command", required=True)

    dev = sub.add_parser("dev", help="run the whole runtime on this machine (SQLite state, port 8288)")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=8288)
    dev.add_argument("-u", "--url", action="append", help="an app's serve URL, kept synced (repeatable)")
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
    dev.add_argument("--db", default=".stepline/dev.db", help="SQLite state file (default .stepline/dev.db)")
    dev.add_argument(
        "--backend",
        choices=["sqlite", "moto"],
        default="sqlite",
        help="sqlite (default) or moto: the AWS adapters against in-process moto",
    )
    dev.add_argument("--workers", type=int, default=4, help="runs executed concurrently")
    dev.set_defaults(func=_dev)

    add_check_parser(sub)
    add_ops_parsers(sub)  # send, runs, run, cancel, replay, tail, dlq, sweep
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
