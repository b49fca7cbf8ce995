"""cdk-nag's AwsSolutions pack: nothing unresolved, and every exception explained and needed."""

from __future__ import annotations

import pytest

from infra import nag

# Every acknowledgement the stack carries, by rule (the reasons are checked below). A new one
# must be added here on purpose.
EXPECTED_RULES = {
    "AwsSolutions-APIG4",
    "AwsSolutions-IAM5[Resource::*]",
    "AwsSolutions-IAM5[Resource::<PayloadsBucket>/*]",
    "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:scheduler:<AWS::Region>:<AWS::AccountId>:schedule/Stepline-timers-cron/*]",
    "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:scheduler:<AWS::Region>:<AWS::AccountId>:schedule/Stepline-timers/*]",
    "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:Stepline/webhooks/*]",
    "AwsSolutions-S1",
    "AwsSolutions-SMG4",
}


def _generalized(rule: str) -> str:
    # The bucket's logical id carries a hash; compare the rule without it.
    import re

    return re.sub(r"<PayloadsBucket[0-9A-F]+\.Arn>", "<PayloadsBucket>", rule)


def test_no_unresolved_findings(synthesized):
    findings = nag.findings(synthesized.app)
    assert findings == [], "\n".join(f"{f.severity} {f.rule} {f.paths}: {f.description}" for f in findings)


def test_the_variant_has_no_unresolved_findings(variant):
    findings = nag.findings(variant.app)
    assert findings == [], "\n".join(f"{f.severity} {f.rule} {f.paths}: {f.description}" for f in findings)


def test_the_protected_template_has_no_unresolved_findings(protected):
    findings = nag.findings(protected.app)
    assert findings == [], "\n".join(f"{f.severity} {f.rule} {f.paths}: {f.description}" for f in findings)


def test_synth_fails_on_an_unresolved_finding(tmp_path):
    import aws_cdk as cdk
    from aws_cdk import aws_sqs as sqs

    app = cdk.App(outdir=str(tmp_path), builtin_cloud_formation_validation=False)
    sqs.Queue(cdk.Stack(app, "Careless"), "Queue")  # no DLQ, no TLS-only policy
    nag.add_checks(app)
    with pytest.raises(Exception, match="AwsSolutions-SQS"):
        app.synth()


def test_every_acknowledgement_gives_a_reason(synthesized):
    acknowledged = nag.acknowledgements(synthesized.app)
    rules = {_generalized(rule) for by_rule in acknowledged.values() for rule in by_rule}
    assert rules == EXPECTED_RULES
    for path, by_rule in acknowledged.items():
        for rule, reason in by_rule.items():
            assert len(reason) >= nag.MIN_REASON_LENGTH and reason[0].isupper(), (path, rule, reason)


def test_every_acknowledgement_answers_a_real_finding(tmp_path, monkeypatch, synthesized):
    """Built again with acknowledgements switched off, the stack shows exactly the findings
    that were acknowledged, where they were acknowledged: none is stale."""
    from infra.app import build_app

    monkeypatch.setattr(nag, "suppress", lambda *args, **kwargs: None)
    app, _ = build_app(outdir=str(tmp_path), check=False)
    raw = nag.findings(app)
    acknowledged = nag.acknowledgements(synthesized.app)
    for path, by_rule in acknowledged.items():
        for rule in by_rule:
            hits = [f for f in raw if f.rule == rule and any(p == path or p.startswith(path + "/") for p in f.paths)]
            assert hits, f"{rule} acknowledged on {path} but nothing there breaks it"
    for finding in raw:
        for finding_path in finding.paths:
            assert any(
                finding.rule in by_rule and (finding_path == path or finding_path.startswith(path + "/"))
                for path, by_rule in acknowledged.items()
            ), f"{finding.rule} on {finding_path} is not acknowledged"


def test_suppress_refuses_a_missing_reason(synthesized):
    with pytest.raises(ValueError, match="reason"):
        nag.suppress(synthesized.stack, "AwsSolutions-S1", "because")
