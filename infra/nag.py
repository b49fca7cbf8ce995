"""cdk-nag: the AwsSolutions checks, and the one way this package records an exception to them.

cdk-nag runs as a CDK validation plugin: at synth, a finding nobody acknowledged fails
``cdk synth``/``cdk deploy``. An acknowledgement names one finding (a rule, or a rule and the
exact IAM action or resource it flags) and says why it does not apply; ``suppress`` refuses one
without a reason, and ``acknowledgements`` lists them all with their reasons for the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Acknowledgment, App, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

MIN_REASON_LENGTH = 20


def suppress(
    construct: IConstruct,
    rule: str,
    reason: str,
    *,
    applies_to: list[str] | None = None,
) -> None:
    """Acknowledge ``rule`` on ``construct`` and everything under it, for ``reason``.

    ``applies_to`` narrows it to those findings (``Resource::...``, ``Action::...``), each
    acknowledged on its own: a role's other wildcards still fail.
    """
    if len(reason.strip()) < MIN_REASON_LENGTH:
        raise ValueError(f"suppressing {rule}: give a reason of at least {MIN_REASON_LENGTH} characters")
    ids = [f"{rule}[{finding}]" for finding in applies_to] if applies_to else [rule]
    for rule_id in ids:
        Validations.of(construct).acknowledge(Acknowledgment(id=rule_id, reason=reason))


def add_checks(app: App) -> None:
    """Run the AwsSolutions pack when ``app`` synthesizes."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str  # "error" or "warning"
    description: str
    paths: tuple[str, ...]


def findings(scope: IConstruct) -> list[Finding]:
    """The AwsSolutions findings nobody acknowledged under ``scope``, without synthesizing."""
    report = AwsSolutionsChecks(verbose=True).validate_scope(scope)
    return [
        Finding(
            rule=v.rule_name,
            severity=v.severity or "",
            description=v.description,
            paths=tuple(r.construct_path or "" for r in v.violating_resources),
        )
        for v in report.violations
    ]


def acknowledgements(scope: IConstruct) -> dict[str, dict[str, str]]:
    """Every acknowledged finding under ``scope``: construct path → {rule id: reason}."""
    out: dict[str, dict[str, str]] = {}
    for node in scope.node.find_all():
        for entry in node.node.metadata:
            if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY and entry.data:
                for rule_id, reason in dict(entry.data).items():
                    rule = rule_id.split("::", 1)[1] if rule_id.lower().startswith("annotation::") else rule_id
                    out.setdefault(node.node.path, {})[rule] = reason
    return out
