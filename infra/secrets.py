"""The signing key, the event keys and the operator key, in Secrets Manager.

The stack creates each with a generated value unless the configuration names an existing secret.
Values never pass through the template: CloudFormation asks Secrets Manager to generate them.
The formats are the ones ``stepline.handlers.wiring`` reads; the Lambdas read them again every
five minutes, so a changed value takes effect without a deploy.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra import nag

_NOT_HEX = "ghijklmnopqrstuvwxyz"  # with uppercase and punctuation excluded: 0-9 a-f remain
SIGNING_KEY_HEX_CHARS = 64  # 32 bytes, like Inngest's keys
EVENT_KEY_CHARS = 48


def existing_secret(scope: Construct, id: str, name_or_arn: str) -> secretsmanager.ISecret:
    """A secret by name, or by its complete ARN (with the 6-character suffix Secrets Manager
    adds): a partial ARN cannot be told from a complete one by looking at it."""
    if name_or_arn.startswith("arn:"):
        return secretsmanager.Secret.from_secret_complete_arn(scope, id, name_or_arn)
    return secretsmanager.Secret.from_secret_name_v2(scope, id, name_or_arn)


class Keys(Construct):
    """``signing_key``: JSON ``{"signing_key": "<64 hex>"}`` (add ``signing_key_fallback`` while
    rotating). ``event_keys``: one generated key; several may be separated by commas.
    ``operator_key``: JSON ``{"operator_key": "<64 hex>"}``, for people and tools, never apps."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        stack_name: str,
        signing_key_secret: str = "",
        event_keys_secret: str = "",
        operator_key_secret: str = "",
        retain: bool,
    ) -> None:
        super().__init__(scope, id)
        removal = RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY
        # The ids the Lambdas read the secrets by, and the names the stack outputs: literal
        # names for the secrets made here, so neither depends on parsing an ARN.
        if signing_key_secret:
            self.signing_key = existing_secret(self, "ExistingSigningKey", signing_key_secret)
            self.signing_key_id = signing_key_secret
        else:
            self.signing_key_id = f"{stack_name}/signing-key"
            self.signing_key = secretsmanager.Secret(
                self,
                "SigningKey",
                secret_name=self.signing_key_id,
                description="Stepline signing key: signs calls to apps, authenticates the REST API",
                generate_secret_string=secretsmanager.SecretStringGenerator(
                    secret_string_template="{}",
                    generate_string_key="signing_key",
                    exclude_uppercase=True,
                    exclude_punctuation=True,
                    exclude_characters=_NOT_HEX,
                    include_space=False,
                    password_length=SIGNING_KEY_HEX_CHARS,
                ),
                removal_policy=removal,
            )
            self._suppress_rotation(self.signing_key, "signing key")
        if event_keys_secret:
            self.event_keys = existing_secret(self, "ExistingEventKeys", event_keys_secret)
            self.event_keys_id = event_keys_secret
        else:
            self.event_keys_id = f"{stack_name}/event-keys"
            self.event_keys = secretsmanager.Secret(
                self,
                "EventKeys",
                secret_name=self.event_keys_id,
                description="Stepline event keys: the keys apps may send events with (POST /e/{key})",
                generate_secret_string=secretsmanager.SecretStringGenerator(
                    exclude_punctuation=True,
                    include_space=False,
                    password_length=EVENT_KEY_CHARS,
                ),
                removal_policy=removal,
            )
            self._suppress_rotation(self.event_keys, "event keys")
        if operator_key_secret:
            self.operator_key = existing_secret(self, "ExistingOperatorKey", operator_key_secret)
            self.operator_key_id = operator_key_secret
        else:
            self.operator_key_id = f"{stack_name}/operator-key"
            self.operator_key = secretsmanager.Secret(
                self,
                "OperatorKey",
                secret_name=self.operator_key_id,
                description="Stepline operator key: steers runs (cancel, replay, erase, the dashboard); never for apps",
                generate_secret_string=secretsmanager.SecretStringGenerator(
                    secret_string_template="{}",
                    generate_string_key="operator_key",
                    exclude_uppercase=True,
                    exclude_punctuation=True,
                    exclude_characters=_NOT_HEX,
                    include_space=False,
                    password_length=SIGNING_KEY_HEX_CHARS,
                ),
                removal_policy=removal,
            )
            nag.suppress(
                self.operator_key,
                "AwsSolutions-SMG4",
                "The operator key is handed to people and tools (the CLI, the dashboard); a "
                "rotation Lambda cannot hand it over, so it is rotated by putting a new value, "
                "which the Lambdas read within five minutes (docs/deploy.md).",
            )

    @property
    def created(self) -> list[secretsmanager.Secret]:
        """The secrets this stack made (not the existing ones it was given)."""
        return [
            s for s in (self.signing_key, self.event_keys, self.operator_key) if isinstance(s, secretsmanager.Secret)
        ]

    @staticmethod
    def _suppress_rotation(secret: secretsmanager.Secret, what: str) -> None:
        nag.suppress(
            secret,
            "AwsSolutions-SMG4",
            f"The {what} are shared with the apps, which must learn a new value before the "
            "runtime uses it; a rotation Lambda cannot reach the apps, so rotation is the "
            "staged, manual procedure in docs/deploy.md.",
        )
