"""Stack configuration from context and environment, and app.py run the way the CDK CLI runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra.bytecode import bytecode_interpreter
from infra.config import StackConfig, context_key
from infra.packaging import PYTHON_VERSION

REPO = Path(__file__).resolve().parents[2]


def test_defaults():
    config = StackConfig.load({}, {})
    assert config.stack_name == "Stepline" and config.schedule_group == "Stepline-timers"
    assert (config.api_memory_mb, config.executor_memory_mb, config.log_retention_days) == (1024, 512, 30)
    assert config.retain and config.architecture == "arm64"


def test_context_wins_over_environment_which_wins_over_defaults():
    env = {"STEPLINE_CDK_API_MEMORY_MB": "768", "STEPLINE_CDK_STACK_NAME": "FromEnv"}
    config = StackConfig.load({"stepline:apiMemoryMb": "1024"}, env)
    assert config.api_memory_mb == 1024 and config.stack_name == "FromEnv"


def test_the_longest_stack_name_fits_every_derived_name():
    config = StackConfig.load({"stepline:stackName": "S" * 52}, {})
    assert len(config.schedule_group + "-cron") == 64


def test_context_keys_are_camel_case():
    assert context_key("executor_memory_mb") == "stepline:executorMemoryMb"
    assert context_key("stack_name") == "stepline:stackName"


@pytest.mark.parametrize(
    "context, message",
    [
        ({"stepline:logRetentionDays": "10"}, "stepline:logRetentionDays"),
        ({"stepline:stackName": "1bad name"}, "stepline:stackName"),
        # Its cron schedule group, "<name>-timers-cron", would be 65 characters: over Scheduler's 64.
        ({"stepline:stackName": "S" * 53}, "stackName.*at most 52 characters.*longer than EventBridge Scheduler's 64"),
        ({"stepline:removalPolicy": "maybe"}, "stepline:removalPolicy"),
        ({"stepline:executorMaxConcurrency": "1"}, "at least 2"),
        ({"stepline:apiMemory": "1024"}, "unknown context stepline:apiMemory"),
    ],
)
def test_bad_configuration_names_the_setting(context, message):
    with pytest.raises(ValueError, match=message):
        StackConfig.load(context, {})


def test_app_py_synthesizes_as_the_cli_runs_it_without_aws_access(tmp_path):
    """The CLI runs cdk.json's "app" with the output directory and the context (cdk.json's and
    -c's) in the environment. With no credentials and every AWS endpoint unreachable, synth
    must still succeed: it calls nothing."""
    context = json.loads((REPO / "cdk.json").read_text())["context"]
    context.update({"stepline:stackName": "FromCli", "stepline:executorMemoryMb": "2048"})
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("AWS_", "CDK_", "STEPLINE_"))
    }
    env.update(
        CDK_OUTDIR=str(tmp_path),
        CDK_CONTEXT_JSON=json.dumps(context),
        AWS_ENDPOINT_URL="http://127.0.0.1:9",  # closed port: any AWS call would fail
        AWS_EC2_METADATA_DISABLED="true",
        # CDK's own template validation is CDK's to test, and triples the time; cdk-nag, a
        # plugin app.py adds, still runs.
        CDK_VALIDATION="false",
    )
    command = json.loads((REPO / "cdk.json").read_text())["app"].split()
    assert command[-1] == "app.py"
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    (stack,) = [a for a in manifest["artifacts"].values() if a["type"] == "aws:cloudformation:stack"]
    # It says where the template is, in its last line.
    said = result.stderr.strip().splitlines()[-1]
    where = tmp_path / stack["properties"]["templateFile"]
    assert said == f"synthesized stack FromCli: the CloudFormation template is {where}"
    if bytecode_interpreter(PYTHON_VERSION) is None:  # told at synth, not found in cold starts later
        assert f"no Python {PYTHON_VERSION} here to compile the Lambda bytecode" in result.stderr
    assert stack["properties"]["stackName"] == "FromCli"
    assert stack["environment"] == "aws://unknown-account/unknown-region"
    template = json.loads((tmp_path / stack["properties"]["templateFile"]).read_text())
    memory = sorted(
        r["Properties"]["MemorySize"] for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"
    )
    assert memory == [1024, 2048]
    report = json.loads((tmp_path / "validation-report.json").read_text())
    assert all(p.get("conclusion") != "failure" for p in report["pluginReports"])
