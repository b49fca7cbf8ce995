"""A deployable example: Stepline plus one app on its SDK, called privately by lambda:Invoke.

    npx --yes aws-cdk deploy --app "python -m examples.lambda_stack"

The app (examples/lambda_app.py) is a plain Lambda function; ``SteplineAppFunction`` publishes
a version per change behind the alias ``live``, configures its SDK, lets Stepline invoke it and
syncs it on every deploy that changes it (the deploy fails, saying why, if the sync does).
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs

from infra.app import build_app
from infra.app_bundle import app_code_dir
from infra.app_function import AppAccess, SteplineAppFunction
from infra.packaging import build_bundle

APP_MODULE = Path(__file__).with_name("lambda_app.py")


def build_example(
    outdir: str | None = None,
    *,
    check: bool = True,
    access: AppAccess = AppAccess.INVOKE,
    context: dict[str, str] | None = None,
):
    """The CDK app, the Stepline stack and the app's construct (tests synthesize this);
    ``context`` holds stack settings (``stepline:...``) as `cdk -c` gives them."""
    app, stack = build_app(context, outdir=outdir, check=check, builtin_validation=False)
    bundle = build_bundle(stack.config.architecture)
    # Its own role and log group (no managed policy): the construct adds the reads it needs.
    role = iam.Role(stack, "OrdersAppRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    log_group = logs.LogGroup(
        stack, "OrdersAppLogs", retention=logs.RetentionDays.ONE_MONTH, removal_policy=RemovalPolicy.DESTROY
    )
    log_group.grant_write(role)
    function = lambda_.Function(
        stack,
        "OrdersApp",
        runtime=stack.code.runtime,
        architecture=stack.code.architecture,
        code=lambda_.Code.from_asset(str(app_code_dir(bundle, [APP_MODULE]))),
        layers=[stack.code.layer],
        handler="lambda_app.handler",
        description="Example app on Stepline's SDK, called privately",
        memory_size=512,
        timeout=Duration.seconds(60),
        role=role,
        log_group=log_group,
        logging_format=lambda_.LoggingFormat.JSON,
    )
    orders = SteplineAppFunction(stack, "Orders", stepline=stack, function=function, access=access)
    return app, stack, orders


if __name__ == "__main__":
    build_example()[0].synth()
