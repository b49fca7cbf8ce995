"""The stack's CloudWatch dashboard of runs, and the metric filters that count the runtime's
error lines.

The run metrics come from the Lambdas as embedded-metric-format lines (stepline.telemetry.metrics,
namespace ``Stepline``, one set per function with the dimensions ``FunctionId`` and ``service``):
functions come and go, so each graph is a SEARCH over the function dimension, summed, rather
than one metric per function named here. The work queue's backlog and age are SQS's own.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.environment import METRICS_NAMESPACE

PERIOD = Duration.minutes(5)
# The runtime's JSON lines (powertools) at ERROR, and those of them about a run.
ERROR_LINES = logs.FilterPattern.string_value("$.level", "=", "ERROR")
RUN_ERROR_LINES = logs.FilterPattern.all(ERROR_LINES, logs.FilterPattern.exists("$.run_id"))


def _by_function(metric: str, statistic: str, label: str) -> cloudwatch.MathExpression:
    """``metric`` of every function, summed into one line."""
    search = f"SEARCH('{{{METRICS_NAMESPACE},FunctionId,service}} MetricName=\"{metric}\"', '{statistic}', 300)"
    return cloudwatch.MathExpression(expression=f"SUM({search})", label=label, period=PERIOD)


def _per_function(metric: str, statistic: str) -> cloudwatch.MathExpression:
    """``metric``, one line per function."""
    search = f"SEARCH('{{{METRICS_NAMESPACE},FunctionId,service}} MetricName=\"{metric}\"', '{statistic}', 300)"
    return cloudwatch.MathExpression(expression=search, label="", period=PERIOD)


class RunsDashboard(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        dashboard_name: str,
        queue: sqs.IQueue,
        dlq: sqs.IQueue,
        log_groups: dict[str, logs.ILogGroup],
    ) -> None:
        super().__init__(scope, id)
        self.filters: list[logs.MetricFilter] = []
        error_lines: list[cloudwatch.IMetric] = []
        for name, group in log_groups.items():
            for kind, pattern in (("ErrorLines", ERROR_LINES), ("RunErrorLines", RUN_ERROR_LINES)):
                metric_filter = logs.MetricFilter(
                    self,
                    f"{name}{kind}",
                    log_group=group,
                    filter_pattern=pattern,
                    metric_namespace=METRICS_NAMESPACE,
                    metric_name=f"{name}{kind}",
                    metric_value="1",
                    default_value=0,
                )
                self.filters.append(metric_filter)
                error_lines.append(metric_filter.metric(period=PERIOD, statistic="Sum", label=f"{name} {kind}"))

        runs = [
            _by_function(name, "Sum", label)
            for name, label in (
                ("RunsStarted", "started"),
                ("RunsCompleted", "completed"),
                ("RunsFailed", "failed"),
                ("RunsCancelled", "cancelled"),
            )
        ]
        steps = [_by_function("StepAttempts", "Sum", "attempts"), _by_function("StepFailures", "Sum", "failed")]
        flow = cloudwatch.MathExpression(
            expression=f"SEARCH('{{{METRICS_NAMESPACE},FlowLimit,service}} MetricName=\"FlowWait\"', 'p90', 300)",
            label="",
            period=PERIOD,
        )
        dead: list[cloudwatch.IMetric] = [
            _by_function("DeadLetters", "Sum", "dead-lettered (EMF)"),
            dlq.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum", label="in the DLQ"),
        ]
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=dashboard_name)
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Runs", left=runs, width=12),
            cloudwatch.GraphWidget(
                title="Failed runs by function", left=[_per_function("RunsFailed", "Sum")], width=12
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Step attempts", left=steps, width=8),
            cloudwatch.GraphWidget(
                title="Step duration p50 / p99 (ms)",
                left=[_per_function("StepDuration", "p50"), _per_function("StepDuration", "p99")],
                width=8,
            ),
            cloudwatch.GraphWidget(title="Time held back by flow control, p90 (ms)", left=[flow], width=8),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Work queue",
                left=[queue.metric_approximate_number_of_messages_visible(period=PERIOD, label="backlog")],
                right=[queue.metric_approximate_age_of_oldest_message(period=PERIOD, label="oldest (s)")],
                width=8,
            ),
            cloudwatch.GraphWidget(title="Dead letters", left=dead, width=8),
            cloudwatch.GraphWidget(title="Runtime error lines", left=error_lines, width=8),
        )
