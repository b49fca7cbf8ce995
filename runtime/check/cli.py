"""`stepline check TARGET`: run the checks on an app and report them.

TARGET is a Python module (``examples.app``) or file (``app.py``) of a Stepline-SDK app, or the
URL of any SDK's serve endpoint (``http://127.0.0.1:3000/api/inngest``). Exit codes: 0 when no
CRITICAL or ERROR check failed, 1 when one did, 2 when the target cannot be checked.
"""

from __future__ import annotations

import argparse
import json
import sys

HELP = "validate an app: serving, ids, retries, concurrency, timeouts, step names (docs/check.md)"


def add_check_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "check", help=HELP, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("target", help="module, .py file, or http(s) URL of an SDK serve endpoint")
    parser.add_argument("--format", choices=["text", "json"], default="text", help="output (default text)")
    how = parser.add_mutually_exclusive_group()
    how.add_argument(
        "--register-via",
        metavar="URL",
        help="URL targets: the Stepline server the app registers with; its stored config is read "
        "back (default: $INNGEST_DEV or http://127.0.0.1:8288, and when nothing listens there the "
        "checker receives the registration there itself)",
    )
    how.add_argument(
        "--listen",
        metavar="PORT",
        type=int,
        help="URL targets: answer /fn/register on 127.0.0.1:PORT during the check; start the "
        "app with INNGEST_DEV=http://127.0.0.1:PORT",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="URL targets: how long to wait for each HTTP answer (default 30)",
    )
    parser.set_defaults(func=run)
    return parser


def is_url(target: str) -> bool:
    return target.lower().startswith(("http://", "https://"))


def run(args: argparse.Namespace) -> int:
    from stepline.check.model import TargetError
    from stepline.check.registry import run_checks
    from stepline.check.report import EXIT_BAD_TARGET, error_json, exit_code, render_json, render_text

    target: str = args.target
    try:
        if is_url(target):
            from stepline.check.url import inspect_url

            view = inspect_url(target, listen=args.listen, register_via=args.register_via, timeout_s=args.timeout)
        else:
            if args.listen is not None or args.register_via is not None:
                raise TargetError("--listen and --register-via apply to URL targets only")
            from stepline.check.module import inspect_module

            view = inspect_module(target)
    except TargetError as err:
        if args.format == "json":
            print(json.dumps(error_json(target, str(err)), indent=2))
        print(f"stepline check: {err}", file=sys.stderr)
        return EXIT_BAD_TARGET
    reports = run_checks(view)
    print(render_json(view, reports) if args.format == "json" else render_text(view, reports))
    return exit_code(reports)
