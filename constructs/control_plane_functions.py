"""The control plane's functions: one lambda_src/ code asset, one Powertools layer."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_ssm as ssm

from constructs import Construct
from constructs.python_function import PythonFunction

CODE_EXCLUDES = ["requirements.txt", "*.md", "**/__pycache__", "**/*.pyc"]
# The user pool's sign-up triggers (construct ids here): the Identity stack names them by
# ARN before they exist, so their names are fixed (see function_name).
PRE_SIGN_UP = "PreSignUp"
POST_CONFIRMATION = "PostConfirmation"


def function_name(prefix: str, construct_id: str) -> str:
    """A control-plane function's name: `<prefix>-<construct id in lowercase>`."""
    return f"{prefix}-{construct_id.lower()}"


class ControlPlaneFunctions(Construct):
    """Builds each function from the same code and layer, with the environment it is given.

    The Powertools layer is AWS's published layer for `powertools_version`: its ARN is a
    public SSM parameter that CloudFormation resolves at deploy time, so synth stays
    offline. Functions are named `<prefix>-<construct id in lowercase>`.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        code_directory: str,
        powertools_version: str,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        self._prefix = prefix
        self._log_retention = log_retention
        self.powertools = lambda_.LayerVersion.from_layer_version_arn(
            self,
            "Powertools",
            ssm.StringParameter.value_for_string_parameter(
                self, f"/aws/service/powertools/python/arm64/python3.14/{powertools_version}"
            ),
        )
        self.code = lambda_.Code.from_asset(code_directory, exclude=CODE_EXCLUDES)
        self.functions: dict[str, PythonFunction] = {}

    def add(
        self,
        construct_id: str,
        *,
        handler: str,
        description: str,
        environment: Mapping[str, str],
        asynchronous: bool = False,
        timeout_seconds: int = 15,
    ) -> PythonFunction:
        function = PythonFunction(
            self,
            construct_id,
            function_name=function_name(self._prefix, construct_id),
            description=description,
            handler=handler,
            code=self.code,
            powertools=self.powertools,
            environment=environment,
            log_retention=self._log_retention,
            timeout_seconds=timeout_seconds,
            asynchronous=asynchronous,
        )
        self.functions[construct_id] = function
        return function


__all__ = ["ControlPlaneFunctions"]
