"""The user's app on Lambda, beside Stepline in the same account: one construct wires it.

    SteplineAppFunction(stack, "Orders", stepline=stepline_stack, function=orders_fn)

* **Configuration.** The app's SDK gets Stepline's API as its base URL and the ids of the key
  secrets (``STEPLINE_SIGNING_KEY_SECRET_ID``, ``STEPLINE_EVENT_KEY_SECRET_ID``): it reads the
  keys from Secrets Manager at start (``stepline.sdk.key_secrets``); no key is ever placed in an
  environment variable. The app's role may read those two secrets, nothing else of Stepline's.
* **Private calls.** A version is published on every change and an alias (``live``) moved to it.
  Stepline calls the alias with ``lambda:Invoke`` (``AppAccess.INVOKE``, the default) or through
  an ``AWS_IAM`` function URL on it, signed with SigV4 (``AppAccess.IAM_URL``). The executor, the
  API (a sync by hand) and the deploy-time sync may invoke exactly this function and its versions
  (runs are pinned to the version they started on: ``stepline.engine.pinning``).
* **Sync on deploy.** A custom resource (``stepline.handlers.sync_resource``) asks the app to sync
  whenever its version changes, and fails the deploy with the reason when it cannot.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

from aws_cdk import CfnElement, CustomResource, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra import nag
from infra.encryption import log_group_prefix
from infra.environment import lambda_environment
from infra.functions import SteplineFunction

if TYPE_CHECKING:
    from infra.stack import SteplineStack

SYNC_HANDLER = "stepline.handlers.sync_resource.handler"
SYNC_FUNCTION_ID = "AppSync"
# Ten tries three seconds apart, each waiting up to 30 s for the app: well inside this.
SYNC_TIMEOUT = Duration.minutes(10)
INVOKE_ACTIONS = ["lambda:InvokeFunction"]
URL_ACTIONS = ["lambda:InvokeFunctionUrl"]


class AppAccess(enum.Enum):
    """How Stepline reaches the app."""

    INVOKE = "invoke"  # lambda:Invoke on the alias: nothing public at all
    IAM_URL = "iam-url"  # a function URL with auth type AWS_IAM, calls signed with SigV4


class SteplineAppFunction(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        stepline: SteplineStack,
        function: lambda_.Function,
        access: AppAccess = AppAccess.INVOKE,
        alias_name: str = "live",
    ) -> None:
        super().__init__(scope, id)
        self.function = function
        self.alias = lambda_.Alias(self, "Alias", alias_name=alias_name, version=function.current_version)
        self._configure(stepline, function)

        self.function_url: lambda_.FunctionUrl | None = None
        if access is AppAccess.IAM_URL:
            self.function_url = self.alias.add_function_url(auth_type=lambda_.FunctionUrlAuthType.AWS_IAM)
            self.target = self.function_url.url
            actions = URL_ACTIONS
        else:
            self.target = self.alias.function_arn
            actions = INVOKE_ACTIONS
        sync = sync_function(stepline)
        for caller in (stepline.executor.handler, stepline.api.handler, sync):
            self._grant_invoke(caller, actions, access)

        # Every change of the app publishes a version: its number changes, so the resource is
        # updated, and the sync runs again.
        self.sync = CustomResource(
            self,
            "Sync",
            service_token=sync.function.function_arn,
            resource_type="Custom::SteplineAppSync",
            properties={"Target": self.target, "Version": function.current_version.version},
        )
        # The app must be configured and allowed to read the keys, the sync allowed to call it,
        # and the API up to take the app's register request, before the sync runs.
        self.sync.node.add_dependency(function, sync, stepline.api, stepline.executor)

    def _configure(self, stepline: SteplineStack, function: lambda_.Function) -> None:
        for name, value in {
            "STEPLINE_API_BASE_URL": stepline.api.url,
            "STEPLINE_EVENT_API_BASE_URL": stepline.api.url,
            "STEPLINE_SIGNING_KEY_SECRET_ID": stepline.keys.signing_key_id,
            "STEPLINE_EVENT_KEY_SECRET_ID": stepline.keys.event_keys_id,
        }.items():
            function.add_environment(name, value)
        role = function.role
        if role is None:
            raise ValueError(f"{function.node.path}: the app's function needs a role to read the key secrets with")
        stepline.keys.signing_key.grant_read(role)
        stepline.keys.event_keys.grant_read(role)
        _grant_key_decrypt(stepline, role)

    def _grant_invoke(self, caller: SteplineFunction, actions: list[str], access: AppAccess) -> None:
        # The function and its versions and aliases: a pinned run calls a version by number.
        arns = [self.function.function_arn, f"{self.function.function_arn}:*"]
        conditions = (
            {"StringEquals": {"lambda:FunctionUrlAuthType": "AWS_IAM"}} if access is AppAccess.IAM_URL else None
        )
        caller.role.add_to_principal_policy(iam.PolicyStatement(actions=actions, resources=arns, conditions=conditions))
        nag.suppress(
            caller.role,
            "AwsSolutions-IAM5",
            "The app function's versions and aliases (':*'): a run is pinned to the version it started on and "
            "calls it by number, so the grant covers this one function's versions, nothing else.",
            applies_to=[f"Resource::<{_logical_id(self.function)}.Arn>:*"],
        )


def grant_app_invoke(caller: SteplineFunction, function_arn: str) -> None:
    """Let ``caller`` invoke the app function at ``function_arn`` (unqualified) and its versions."""
    caller.role.add_to_principal_policy(
        iam.PolicyStatement(actions=INVOKE_ACTIONS, resources=[function_arn, f"{function_arn}:*"])
    )
    nag.suppress(
        caller.role,
        "AwsSolutions-IAM5",
        "An app function's versions and aliases (':*'): a run is pinned to the version it started on and "
        "calls it by number, so the grant covers this one function's versions, nothing else.",
        applies_to=[f"Resource::{function_arn}:*"],
    )


def _logical_id(function: lambda_.Function) -> str:
    child = function.node.default_child
    if not isinstance(child, CfnElement):
        raise TypeError(f"{function.node.path} has no CloudFormation resource of its own")
    stack = Stack.of(child)
    return str(stack.resolve(stack.get_logical_id(child)))


def _grant_key_decrypt(stepline: SteplineStack, role: iam.IRole) -> None:
    """With a customer managed key, the secrets are encrypted with it: the app decrypts them,
    through Secrets Manager only. A key the stack made trusts the roles its policy names and no
    IAM policy (infra/encryption.py), so the role is named there too; an existing key is granted
    in the role's own policy, as the stack's roles are."""
    key = stepline.data_key.key
    if key is None:
        return
    via = {"StringEquals": {"kms:ViaService": f"secretsmanager.{Stack.of(stepline).region}.amazonaws.com"}}
    role.add_to_principal_policy(iam.PolicyStatement(actions=["kms:Decrypt"], resources=[key.key_arn], conditions=via))
    if stepline.data_key.created:
        key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ArnPrincipal(role.role_arn)],
                actions=["kms:Decrypt"],
                resources=["*"],  # in a key policy, "*" is this key
                conditions=via,
            )
        )


def sync_function(stepline: SteplineStack) -> SteplineFunction:
    """The stack's one deploy-time sync Lambda, made with its first app."""
    found = stepline.node.try_find_child(SYNC_FUNCTION_ID)
    if isinstance(found, SteplineFunction):
        return found
    resources = stepline.resources
    fn = SteplineFunction(
        stepline,
        SYNC_FUNCTION_ID,
        code=stepline.code,
        handler=SYNC_HANDLER,
        description="Stepline deploy-time app sync: asks each app to sync when it is deployed",
        memory_mb=512,
        timeout=SYNC_TIMEOUT,
        # The executor's settings: the table, the signing key to sign the sync with, no other key.
        environment=lambda_environment(resources, role="executor"),
        log_retention_days=stepline.config.log_retention_days,
        log_group_name=f"{log_group_prefix(stepline.config.stack_name)}app-sync",
        key=stepline.data_key.key,
    )
    # It reads the catalog (to check the app registered) and signs with the signing key.
    stepline.state.grant_use(fn.role)
    stepline.keys.signing_key.grant_read(fn.role)
    _grant_key_decrypt(stepline, fn.role)
    fn.suppress_any_resource_finding()
    return fn
