"""The control plane's operational alarms: anything that means a bug or a limit reached."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from aws_cdk import Duration
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda as lambda_

from constructs import Construct

PERIOD = Duration.minutes(5)


class OperationalAlarms(Construct):
    """One alarm per function's errors, one for Lambda throttles in the account and region,
    the API's 5xx and each table's throttles.

    Throttles: none of the functions has reserved concurrency, so Lambda throttles one only
    when the account's concurrency in the region is used up, a condition of the account,
    not of a function. One alarm on the account's `AWS/Lambda Throttles` (no dimension)
    sees every function's throttles, ours and any others' in the account, for $0.10 a
    month instead of $0.10 per function (issue 13: the default platform idles within
    $2.50); which function it was is in each function's own Throttles metric.

    Each fires on a single occurrence in five minutes (none of them is normal) and notifies
    `alarm_action`. `functions` and `tables` are keyed by the name the alarm carries.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: Mapping[str, lambda_.IFunction],
        api: apigw.IHttpApi,
        tables: Mapping[str, dynamodb.ITable],
        alarm_action: cloudwatch.IAlarmAction,
        errors_expected: Collection[str] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        self.alarms: list[cloudwatch.Alarm] = []
        for name, function in functions.items():
            metrics = [(function.metric_errors(), "Errors")]
            if name in errors_expected:
                # Its errors are answers (the pre sign-up trigger refuses a sign-up by
                # raising): an alarm would page on every refused address.
                metrics = []
            for metric, what in metrics:
                self._alarm(
                    f"{name}{what}",
                    metric.with_(period=PERIOD, statistic="Sum"),
                    f"{what} in the {name} function",
                )
        self._alarm(
            "LambdaThrottles",
            cloudwatch.Metric(
                namespace="AWS/Lambda", metric_name="Throttles", statistic="Sum", period=PERIOD
            ),
            "Lambda throttled a function in this account and region (its concurrency is used up)",
        )
        self._alarm(
            "Api5xx",
            api.metric_server_error(period=PERIOD, statistic="Sum"),
            "The HTTP API answered 5xx: a 5xx is a bug",
        )
        for name, table in tables.items():
            self._alarm(
                f"{name.capitalize()}Throttles",
                cloudwatch.Metric(
                    namespace="AWS/DynamoDB",
                    metric_name="ThrottledRequests",
                    dimensions_map={"TableName": table.table_name},
                    statistic="Sum",
                    period=PERIOD,
                ),
                f"DynamoDB throttled requests on the {name} table",
            )
        for alarm in self.alarms:
            alarm.add_alarm_action(alarm_action)

    def _alarm(self, construct_id: str, metric: cloudwatch.IMetric, description: str) -> None:
        self.alarms.append(
            cloudwatch.Alarm(
                self,
                construct_id,
                metric=metric,
                alarm_description=description,
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
        )


__all__ = ["OperationalAlarms"]
