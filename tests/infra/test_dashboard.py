"""The stack's dashboard of runs, its metric filters on the Lambdas' JSON logs, and the traces
setting, in the synthesized template."""

from __future__ import annotations

import json

import pytest

from infra.config import ADOT_COLLECTOR_ENDPOINT, StackConfig
from tests.infra.conftest import synthesize

ADOT = "arn:aws:lambda:us-east-1:901920570463:layer:aws-otel-collector-arm64-ver-0-115-0:3"


def resources(template: dict, kind: str) -> dict[str, dict]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def body_text(value) -> str:
    """A dashboard body as CloudFormation holds it (a string, or an Fn::Join of strings and refs)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        return "".join(body_text(part) for part in value["Fn::Join"][1])
    return "<ref>"


def functions(template: dict) -> dict[str, dict]:
    return {k: v for k, v in resources(template, "AWS::Lambda::Function").items() if "stepline" in json.dumps(v)}


def test_the_dashboard_graphs_runs_steps_flow_control_dead_letters_and_the_queue(synthesized):
    [dashboard] = resources(synthesized.template, "AWS::CloudWatch::Dashboard").values()
    assert dashboard["Properties"]["DashboardName"] == "Stepline-runs"
    body = json.loads(body_text(dashboard["Properties"]["DashboardBody"]).replace("<ref>", "x"))
    titles = [w["properties"]["title"] for w in body["widgets"]]
    assert "Runs" in titles and "Work queue" in titles and "Dead letters" in titles
    text = json.dumps(body)
    for metric in ("RunsStarted", "RunsCompleted", "RunsFailed", "RunsCancelled", "StepAttempts", "StepFailures",
                   "StepDuration", "FlowWait", "DeadLetters", "ApproximateAgeOfOldestMessage",
                   "ApproximateNumberOfMessagesVisible", "ExecutorRunErrorLines", "ApiErrorLines"):
        assert metric in text, metric
    # The run metrics are searched in the namespace and dimensions the runtime's EMF writes.
    assert "{Stepline,FunctionId,service}" in text


def test_metric_filters_count_the_runtimes_error_lines_in_both_log_groups(synthesized):
    filters = resources(synthesized.template, "AWS::Logs::MetricFilter").values()
    by_name = {f["Properties"]["MetricTransformations"][0]["MetricName"]: f["Properties"] for f in filters}
    assert set(by_name) == {"ApiErrorLines", "ApiRunErrorLines", "ExecutorErrorLines", "ExecutorRunErrorLines"}
    assert by_name["ExecutorErrorLines"]["FilterPattern"] == '{ $.level = "ERROR" }'
    assert by_name["ExecutorRunErrorLines"]["FilterPattern"] == '{ ($.level = "ERROR") && ($.run_id = "*") }'
    groups = resources(synthesized.template, "AWS::Logs::LogGroup")
    for name, props in by_name.items():
        assert props["LogGroupName"]["Ref"] in groups, name
        transformation = props["MetricTransformations"][0]
        assert transformation["MetricNamespace"] == "Stepline" and transformation["DefaultValue"] == 0


def test_traces_are_off_by_default(synthesized):
    for fn in functions(synthesized.template).values():
        env = fn["Properties"]["Environment"]["Variables"]
        assert not [k for k in env if k.startswith("OTEL_")]


def test_adot_traces_add_the_layer_and_point_the_exporter_at_its_collector(tmp_path):
    context = {"stepline:traces": "adot", "stepline:adotLayerArn": ADOT, "stepline:traceSampleRatio": "0.25"}
    template = synthesize(tmp_path, context, check=False).template
    fns = functions(template)
    assert len(fns) == 2
    for fn in fns.values():
        props = fn["Properties"]
        assert ADOT in props["Layers"]
        env = props["Environment"]["Variables"]
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == ADOT_COLLECTOR_ENDPOINT
        assert env["OTEL_TRACES_SAMPLER_ARG"] == "0.25"
        assert env["OTEL_SERVICE_NAME"] in ("stepline-api", "stepline-executor")


@pytest.mark.parametrize(
    ("context", "fragment"),
    [
        ({"stepline:traces": "otlp"}, "stepline:otlpEndpoint (or STEPLINE_CDK_OTLP_ENDPOINT): Value error, traces=otlp"),
        ({"stepline:traces": "otlp", "stepline:otlpEndpoint": "otlp.example.com"}, "needs the OTLP/HTTP endpoint"),
        ({"stepline:traces": "adot"}, "stepline:adotLayerArn"),
        ({"stepline:traces": "xray"}, "stepline:traces"),
    ],
)
def test_a_traces_setting_that_cannot_work_is_refused_naming_it(context, fragment):
    with pytest.raises(ValueError, match="Stepline stack configuration") as refused:
        StackConfig.load(context, {})
    assert fragment in str(refused.value)


def test_otlp_traces_send_to_the_given_endpoint():
    config = StackConfig.load({"stepline:traces": "otlp", "stepline:otlpEndpoint": "https://otlp.example.com"}, {})
    env = config.trace_environment("executor")
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "https://otlp.example.com"
    assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf" and env["OTEL_SERVICE_NAME"] == "stepline-executor"


OTLP = {"stepline:traces": "otlp", "stepline:otlpEndpoint": "https://otlp.example.com"}
HEADERS_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:tracing/otlp-headers-AbCdEf"


def secret_reads(template: dict) -> dict[str, list]:
    """Each IAM policy's resources granted secretsmanager:GetSecretValue, by the role it is on."""
    out: dict[str, list] = {}
    for policy in resources(template, "AWS::IAM::Policy").values():
        props = policy["Properties"]
        for statement in props["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if "secretsmanager:GetSecretValue" in actions:
                for role in props["Roles"]:
                    granted = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
                    out.setdefault(role["Ref"], []).extend(granted)
    return out


def function_roles(template: dict) -> set[str]:
    return {fn["Properties"]["Role"]["Fn::GetAtt"][0] for fn in functions(template).values()}


@pytest.mark.parametrize(
    ("secret", "resource"),
    [
        (HEADERS_ARN, HEADERS_ARN),
        # By name, the grant covers the suffix Secrets Manager adds to it (six characters), no more.
        ("tracing/otlp-headers", ":secret:tracing/otlp-headers-??????"),
    ],
)
def test_the_otlp_headers_secret_is_named_to_both_lambdas_and_readable_by_them_alone(tmp_path, secret, resource):
    template = synthesize(tmp_path, {**OTLP, "stepline:otlpHeadersSecret": secret}, check=True).template  # cdk-nag too
    fns = functions(template)
    assert len(fns) == 2
    for fn in fns.values():
        assert fn["Properties"]["Environment"]["Variables"]["STEPLINE_OTLP_HEADERS_SECRET_ID"] == secret
    reads = secret_reads(template)
    for role in function_roles(template):
        granted = [json.dumps(r) for r in reads[role]]
        assert "*" not in [r for r in reads[role] if isinstance(r, str)]
        assert [g for g in granted if resource in g], (role, granted)
    # No other role may read it.
    others = [role for role, granted in reads.items() if any(resource in json.dumps(r) for r in granted)]
    assert set(others) == function_roles(template)


def test_without_the_setting_no_headers_secret_is_named_or_granted(tmp_path):
    template = synthesize(tmp_path, OTLP, check=False).template
    for fn in functions(template).values():
        assert "STEPLINE_OTLP_HEADERS_SECRET_ID" not in fn["Properties"]["Environment"]["Variables"]
    assert "otlp-headers" not in json.dumps(secret_reads(template))


@pytest.mark.parametrize(
    ("context", "fragment"),
    [
        ({"stepline:otlpHeadersSecret": "tracing/otlp-headers"}, "for traces=otlp"),
        ({"stepline:traces": "adot", "stepline:adotLayerArn": ADOT, "stepline:otlpHeadersSecret": "x"}, "traces=otlp"),
        ({**OTLP, "stepline:otlpHeadersSecret": "arn:aws:secretsmanager:us-east-1:1:secret:x"}, "complete ARN"),
    ],
)
def test_an_otlp_headers_secret_that_cannot_work_is_refused_naming_the_setting(context, fragment):
    with pytest.raises(ValueError, match="Stepline stack configuration") as refused:
        StackConfig.load(context, {})
    assert "stepline:otlpHeadersSecret" in str(refused.value) and fragment in str(refused.value)
