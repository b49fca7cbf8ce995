"""What each entry point imports, checked in a fresh interpreter: a Lambda handler never loads the
CLI, the dev server or the CEL library's prompt; the SDK never loads the server or AWS.

These guard the import graph, not timings: ``make bench`` (bench/imports.py) measures those.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Interactive and command-line code: no server or SDK process needs any of it.
CLI_AND_PROMPT = ("prompt_toolkit", "typer", "rich", "pygments", "cel.cli", "stepline.cli", "stepline.cli_ops")
DEV_SERVER = ("stepline.dev", "stepline.local", "stepline.check.cli", "moto")
SERVER_AND_AWS = (
    "boto3",
    "botocore",
    "aws_lambda_powertools",
    "aws_xray_sdk",
    "moto",
    "stepline.engine",
    "stepline.aws",
    "stepline.local",
    "stepline.dev",
    "stepline.api",
    "stepline.handlers",
    "stepline.check",
    "stepline.settings",
)
LAMBDA = {"LAMBDA_TASK_ROOT": "/var/task", "AWS_LAMBDA_FUNCTION_NAME": "stepline-test", "AWS_REGION": "us-east-1"}


def modules_after(code: str, env: dict[str, str] | None = None) -> set[str]:
    """The modules loaded once ``code`` has run in a fresh interpreter."""
    probe = code + "\nimport json as _j, sys as _s\nprint(_j.dumps(sorted(_s.modules)))\n"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "STEPLINE_", "LAMBDA_"))}
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout.splitlines()[-1]))


def loaded(modules: set[str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes))


@pytest.mark.parametrize("handler", ["stepline.handlers.api", "stepline.handlers.executor"])
def test_a_lambda_handler_loads_no_cli_no_dev_server_no_sdk_and_no_tracer_when_tracing_is_off(handler):
    modules = modules_after(f"import {handler}", {**LAMBDA, "POWERTOOLS_TRACE_DISABLED": "true"})
    assert handler in modules
    assert loaded(modules, CLI_AND_PROMPT) == []
    assert loaded(modules, DEV_SERVER) == []
    # The runtime does not pay for the SDK it serves.
    assert loaded(modules, ("stepline.sdk",)) == []
    assert loaded(modules, ("aws_xray_sdk",)) == []


@pytest.mark.parametrize("handler", ["stepline.handlers.api", "stepline.handlers.executor"])
def test_with_tracing_on_a_lambda_handler_sets_up_the_xray_tracer(handler):
    code = f"import {handler} as h\nassert hasattr(h.handler, '__wrapped__')"
    modules = modules_after(
        code, {**LAMBDA, "POWERTOOLS_TRACE_DISABLED": "false", "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR"}
    )
    assert "aws_xray_sdk.core" in modules
    # X-Ray's patch_all imports every library it knows how to patch that is installed (here
    # httpx, whose own CLI brings rich and pygments; the Lambda layer holds no httpx): only our
    # CLI and the CEL library's prompt are checked.
    assert loaded(modules, ("prompt_toolkit", "cel.cli", "stepline.cli", "stepline.cli_ops")) == []
    assert loaded(modules, DEV_SERVER) == []


def test_a_handler_still_loads_no_cel_cli_once_an_expression_is_compiled():
    code = textwrap.dedent(
        """
        import stepline.handlers.api
        from stepline.engine.expressions import matches
        assert matches("event.data.ok == true", {"event": {"data": {"ok": True}}})
        from stepline.protocol.register import check_cel
        check_cel("event.data.id")
        """
    )
    modules = modules_after(code, {**LAMBDA, "POWERTOOLS_TRACE_DISABLED": "true"})
    assert "cel.cel" in modules
    assert loaded(modules, CLI_AND_PROMPT) == []


def test_the_sdk_loads_nothing_of_the_server_or_aws():
    modules = modules_after("import stepline\nfrom stepline import *")
    assert "stepline.sdk" in modules
    assert loaded(modules, SERVER_AND_AWS) == []
    assert loaded(modules, CLI_AND_PROMPT) == []


def test_the_testing_module_loads_the_engine_clock_and_nothing_else_of_the_server():
    modules = modules_after("from stepline import testing\nfrom stepline.testing import ManualClock")
    assert loaded(modules, ("stepline.engine",)) == ["stepline.engine", "stepline.engine.clock"]
    assert loaded(modules, tuple(p for p in SERVER_AND_AWS if p != "stepline.engine")) == []


# Makes the server's packages unimportable, as in an install of the SDK alone.
SDK_ONLY = textwrap.dedent(
    """
    import sys
    class _NotInstalled:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("boto3", "botocore", "aws_lambda_powertools", "aws_xray_sdk", "moto"):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None
    sys.meta_path.insert(0, _NotInstalled())
    """
)


def test_an_sdk_only_install_declares_serves_and_unit_tests_functions():
    code = SDK_ONLY + textwrap.dedent(
        """
        from stepline import Client, Context, cron, serve_wsgi, testing
        from stepline.testing import ManualClock

        client = Client("shop", dev=True)

        @client.function("nightly", trigger=cron("TZ=Europe/Paris 0 9 * * *"), idempotency="event.data.id")
        def nightly(ctx: Context) -> str:
            ctx.step.sleep("wait", "2h")
            return ctx.step.run("report", lambda: "sent")

        serve_wsgi(client)
        clock = ManualClock()
        start = clock.now_ms()
        result = testing.run(nightly, {"name": "shop/nightly", "data": {"id": "n1"}}, clock=clock)
        assert result.status == "Completed" and result.output == "sent", result
        assert clock.now_ms() - start >= 2 * 3600 * 1000
        try:
            import boto3  # noqa: F401
        except ModuleNotFoundError:
            pass
        else:
            raise AssertionError("the probe did not hide the server's packages")
        """
    )
    modules = modules_after(code)
    assert loaded(modules, ("stepline.engine",)) == ["stepline.engine", "stepline.engine.clock"]
    assert loaded(modules, ("stepline.aws", "stepline.api", "stepline.handlers", "stepline.dev")) == []
    # The CEL library was loaded (the idempotency key was compiled), its command line was not.
    assert "cel.cel" in modules
    assert loaded(modules, CLI_AND_PROMPT) == []


def test_the_package_exports_exactly_the_sdk_names():
    import stepline
    import stepline.sdk

    assert sorted(stepline.__all__) == sorted(stepline.sdk.__all__)
    for name in stepline.__all__:
        assert getattr(stepline, name) is getattr(stepline.sdk, name)
    with pytest.raises(AttributeError):
        stepline.no_such_name  # noqa: B018


def test_every_name_the_protocol_package_exports_resolves_to_its_module():
    import importlib

    import stepline.protocol as protocol

    assert sorted(protocol.__all__) == sorted(protocol._EXPORTS)
    for name, module in protocol._EXPORTS.items():
        assert getattr(protocol, name) is getattr(importlib.import_module(f"stepline.protocol.{module}"), name)
    with pytest.raises(AttributeError):
        protocol.no_such_name  # noqa: B018


def test_stepline_dev_without_the_server_extra_says_what_to_install():
    code = SDK_ONLY + textwrap.dedent(
        """
        import contextlib, io
        from stepline.cli import main
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = main(["dev", "--db", ""])
        assert code == 2, code
        assert "pip install 'stepline[server]'" in err.getvalue(), err.getvalue()
        """
    )
    modules = modules_after(code)
    assert "stepline.cli" in modules
