"""Secrets of the verified webhooks (docs/webhooks.md): one per source the configuration sets
(``stepline:webhooks``), named ``<stack>/webhooks/<source>``, and the API's permission to read
every secret under that prefix, so sources added later through ``stepline webhooks set`` can
keep theirs there too.

A created secret holds a generated placeholder (``{"secret": "<random>"}``): the provider makes
the real one (Stripe's ``whsec_...``, the GitHub webhook's, the Shopify app's client secret), and
the operator puts it in with ``aws secretsmanager put-secret-value``. Until then every delivery
to the source is refused as wrongly signed, and counted. The value never passes through the
template.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra import nag

PLACEHOLDER_CHARS = 48


class WebhookSecrets(Construct):
    def __init__(self, scope: Construct, id: str, *, prefix: str, sources: list[str], retain: bool) -> None:
        super().__init__(scope, id)
        self.prefix = prefix
        self.created: list[secretsmanager.Secret] = []
        for source in sources:
            secret = secretsmanager.Secret(
                self,
                f"Source-{source}",
                secret_name=prefix + source,
                description=f"Stepline webhook source {source}: the provider's signing secret",
                generate_secret_string=secretsmanager.SecretStringGenerator(
                    secret_string_template="{}",
                    generate_string_key="secret",
                    exclude_punctuation=True,
                    include_space=False,
                    password_length=PLACEHOLDER_CHARS,
                ),
                removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
            )
            nag.suppress(
                secret,
                "AwsSolutions-SMG4",
                "The provider issues this secret and rolls it (Stripe, GitHub, Shopify); a rotation "
                "Lambda cannot change it at the provider, so it is replaced by putting the provider's "
                "new value, which the API reads within five minutes (docs/webhooks.md).",
            )
            self.created.append(secret)

    @property
    def arn_pattern(self) -> str:
        stack = Stack.of(self)
        return f"arn:{stack.partition}:secretsmanager:{stack.region}:{stack.account}:secret:{self.prefix}*"

    def grant_read(self, role: iam.IRole) -> None:
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["secretsmanager:GetSecretValue"], resources=[self.arn_pattern])
        )
        nag.suppress(
            role,
            "AwsSolutions-IAM5",
            "Webhook secrets are added by operators as sources are configured (stepline webhooks set), "
            "each under the stack's own prefix; the grant is GetSecretValue on that prefix only.",
            applies_to=[
                f"Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:{self.prefix}*"
            ],
        )
