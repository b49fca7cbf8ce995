"""The CDK app: configuration from context and environment, the stack, and cdk-nag.

``build_app`` is what ``app.py`` runs under the CDK CLI and what the tests synthesize, with the
same feature flags (cdk.json's context) either way. It makes no AWS calls: the stack is
environment-agnostic (account and region resolve at deploy time) and looks nothing up.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# jsii prints a banner for Node releases past their end of life; Node 20 synthesizes correctly.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

import aws_cdk as cdk  # noqa: E402 - after the environment above: importing starts jsii

from infra import nag  # noqa: E402
from infra.bytecode import INTERPRETER_ENV, bytecode_interpreter  # noqa: E402
from infra.config import StackConfig  # noqa: E402
from infra.packaging import BUILD_DIR, REPO_ROOT, build_bundle  # noqa: E402
from infra.stack import SteplineStack  # noqa: E402

CDK_JSON = REPO_ROOT / "cdk.json"


def cdk_json_context(path: Path = CDK_JSON) -> dict[str, Any]:
    return dict(json.loads(path.read_text()).get("context", {}))


def build_app(
    context: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    outdir: str | None = None,
    build_dir: Path = BUILD_DIR,
    check: bool = True,
    builtin_validation: bool = True,
) -> tuple[cdk.App, SteplineStack]:
    """The app and its one stack. ``context`` adds to cdk.json's (the CLI passes its own,
    ``-c`` values included, through the environment, and those win).

    ``check`` adds cdk-nag's AwsSolutions pack as a validation plugin; ``builtin_validation``
    is CDK's own template validation, which takes most of a synth's time.
    """
    app = cdk.App(
        context={**cdk_json_context(), **dict(context or {})},
        outdir=outdir,
        builtin_cloud_formation_validation=builtin_validation,
    )
    config = StackConfig.load(_all_context(app), environ)
    bundle = build_bundle(config.architecture, build_dir=build_dir)
    if bytecode_interpreter(bundle.python_version) is None:
        # Said at synth, not discovered in cold-start latency after the deploy.
        print(
            f"warning: no Python {bundle.python_version} here to compile the Lambda bytecode (python"
            f"{bundle.python_version} on PATH, one uv manages, or {INTERPRETER_ENV}): the Lambdas compile "
            f"what they import at every cold start. `uv python install {bundle.python_version}` gets one.",
            file=sys.stderr,
        )
    stack = SteplineStack(app, "Stepline", config=config, bundle=bundle)
    if check:
        nag.add_checks(app)
    return app, stack


def _all_context(app: cdk.App) -> dict[str, Any]:
    return dict(app.node.get_all_context())
