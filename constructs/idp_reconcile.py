"""Keeps the organisations' SAML IdPs on the web client across deploys (Tier 3).

Organisations add `org-<organizationId>` IdPs to the web client at runtime; a deploy that
updates the client (a CloudFormation resource) writes the template's provider list and
drops them. A custom resource that depends on the client and carries the client's template
properties runs a function of ours (lambda_src/handlers/idp_reconcile.py) exactly when
CloudFormation updated the client, after it did; the function puts every `org-*` IdP of
the pool back (and the template's settings, should a runtime write have raced with the
deploy: agent_builder/services/idp_reconcile.py). The same function runs every hour as a
safety net for an update the custom resource does not follow (a rollback, a console edit).
"""

from __future__ import annotations

from typing import Any

import jsii
from aws_cdk import CustomResource, Duration, IStableAnyProducer, Lazy
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs

from constructs import Construct
from constructs.control_plane_functions import ControlPlaneFunctions
from constructs.python_function import PythonFunction

HANDLER = "handlers.idp_reconcile.handler"
RESOURCE_TYPE = "Custom::OrgIdentityProviders"
# The custom resource's property that carries the client's template properties
# (lambda_src/agent_builder/services/idp_reconcile.py CLIENT_PROPERTY).
CLIENT_PROPERTY = "Client"
# What SamlProviders.reconcile calls, on the one pool: nothing that creates or deletes an IdP.
RECONCILE_ACTIONS = (
    "cognito-idp:ListIdentityProviders",
    "cognito-idp:DescribeUserPoolClient",
    "cognito-idp:UpdateUserPoolClient",
)
# Lambda's attempts at an asynchronous invocation (CloudFormation's) with their backoff fit
# in this; without an answer by then CloudFormation fails the update rather than waiting
# its default hour.
SERVICE_TIMEOUT = Duration.minutes(10)
TIMEOUT_SECONDS = 120
# The safety net's period: ~730 invocations of a few hundred milliseconds a month (free
# tier; scripts/cost.py lists it), and at most an hour of broken SSO sign-in should an
# update escape the custom resource.
SCHEDULE = Duration.hours(1)


@jsii.implements(IStableAnyProducer)
class _TemplateProperties:
    """The client's CloudFormation properties as the template will have them, produced at
    synth time (after every construct had its say), by CfnResource's own renderer (its
    protected API). A raw override (`add_property_override`) on the client would not be
    in this copy: tests/infra/test_idp_reconcile.py checks that the copy equals the
    client's template properties, so such a change fails there rather than in a deploy."""

    def __init__(self, resource: cognito.CfnUserPoolClient) -> None:
        self._resource = resource

    def produce(self) -> Any:
        resource: Any = self._resource
        return resource._render_properties(resource._cfn_properties)


class IdpReconcile(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        user_pool: cognito.IUserPool,
        client: cognito.UserPoolClient,
        code_directory: str,
        powertools_version: str,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        functions = ControlPlaneFunctions(
            self,
            "Functions",
            prefix=prefix,
            code_directory=code_directory,
            powertools_version=powertools_version,
            log_retention=log_retention,
        )
        self.function: PythonFunction = functions.add(
            "IdpReconcile",
            handler=HANDLER,
            description="Puts the organisations' SAML IdPs back on the web client after deploys",
            environment={
                "POWERTOOLS_SERVICE_NAME": f"{prefix}-idp-reconcile",
                "USER_POOL_ID": user_pool.user_pool_id,
                "USER_POOL_CLIENT_ID": client.user_pool_client_id,
            },
            # CloudFormation and EventBridge both invoke it asynchronously.
            asynchronous=True,
            timeout_seconds=TIMEOUT_SECONDS,
        )
        iam.Grant.add_to_principal(
            grantee=self.function.role,
            actions=list(RECONCILE_ACTIONS),
            resource_arns=[user_pool.user_pool_arn],
        )

        cfn_client = client.node.default_child
        assert isinstance(cfn_client, cognito.CfnUserPoolClient)
        self.resource = CustomResource(
            self,
            "Reconcile",
            service_token=self.function.function.function_arn,
            resource_type=RESOURCE_TYPE,
            # Any change to the client's properties changes this one too, so CloudFormation
            # updates (re-runs) this resource exactly when it updated the client; the
            # client's id follows a replacement.
            properties={
                CLIENT_PROPERTY: Lazy.any(_TemplateProperties(cfn_client)),
                "ClientId": client.user_pool_client_id,
            },
            service_timeout=SERVICE_TIMEOUT,
        )
        # After the client (and whatever it waits for): the Ref above says so too.
        self.resource.node.add_dependency(client)

        self.schedule = events.Rule(
            self,
            "Hourly",
            description="Safety net: the organisations' SAML IdPs on the web client",
            schedule=events.Schedule.rate(SCHEDULE),
            targets=[targets.LambdaFunction(self.function.function, retry_attempts=2)],
        )


__all__ = ["CLIENT_PROPERTY", "HANDLER", "RECONCILE_ACTIONS", "RESOURCE_TYPE", "IdpReconcile"]
