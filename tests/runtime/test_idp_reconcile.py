"""The organisations' SAML IdPs survive a deploy that rewrites the web client: the Identity
stack's custom resource (and its schedule) puts them back (handlers/idp_reconcile.py),
against moto's Cognito; failures and retries against a stand-in gateway."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from moto import mock_aws

from agent_builder import clients, wiring
from agent_builder.gateways import cfn_response
from agent_builder.gateways.cfn_response import ResponseSender
from agent_builder.gateways.saml_providers import (
    ClientReconciled,
    template_settings,
    writable_client_fields,
)
from agent_builder.services.idp_reconcile import IdpReconcileService
from tests.runtime.idp_support import (
    CONSOLE,
    RESPONSE_URL,
    SCHEDULED_EVENT,
    TEMPLATE_CLIENT,
    as_cloudformation_sends,
    client_create_arguments,
    request,
)
from tests.runtime.support import REGION

ORGS = ("0f3c9a52-org-a", "7d21be04-org-b")


@dataclass
class Context:
    """Lambda's context, with the time left that the reconcile's retries watch."""

    remaining_ms: int = 120_000
    function_name: str = "agent-builder-idpreconcile"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = (
        "arn:aws:lambda:us-east-1:123456789012:function:agent-builder-idpreconcile"
    )
    aws_request_id: str = "00000000-0000-4000-8000-000000000002"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@dataclass
class CloudFormation:
    """The pre-signed response URL: every answer the function PUTs there."""

    answers: list[dict[str, Any]] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)

    def open(self, request: Any, timeout: float) -> Any:
        self.urls.append(request.full_url)
        self.answers.append(json.loads(request.data))
        return _Ok()

    @property
    def answer(self) -> dict[str, Any]:
        [answer] = self.answers
        return answer


class _Ok:
    status = 200

    def __enter__(self) -> _Ok:
        return self

    def __exit__(self, *_: Any) -> None:
        return None


@dataclass
class Pool:
    cognito: Any
    pool_id: str
    client_id: str
    calls: list[tuple[str, dict[str, Any]]]

    def describe(self) -> dict[str, Any]:
        return dict(
            self.cognito.describe_user_pool_client(
                UserPoolId=self.pool_id, ClientId=self.client_id
            )["UserPoolClient"]
        )

    def providers(self) -> list[str]:
        return list(self.describe().get("SupportedIdentityProviders") or [])

    def add_saml(self, name: str) -> None:
        self.cognito.create_identity_provider(
            UserPoolId=self.pool_id,
            ProviderName=name,
            ProviderType="SAML",
            ProviderDetails={"MetadataURL": f"https://idp.example.com/{name}/metadata.xml"},
            AttributeMapping={"email": "email", "name": "name"},
        )

    def deploy(self, template: dict[str, Any] = TEMPLATE_CLIENT) -> None:
        """What CloudFormation does to the client: UpdateUserPoolClient with the template's
        properties, so the providers are the template's (COGNITO, Google) and no org-*."""
        self.cognito.update_user_pool_client(
            UserPoolId=self.pool_id,
            ClientId=self.client_id,
            **{k: v for k, v in template.items() if k not in ("GenerateSecret", "UserPoolId")},
        )

    def updates(self) -> list[dict[str, Any]]:
        return [params for name, params in self.calls if name == "UpdateUserPoolClient"]


@pytest.fixture
def cloudformation(monkeypatch: pytest.MonkeyPatch) -> CloudFormation:
    fake = CloudFormation()
    monkeypatch.setattr(
        cfn_response, "urlopen", lambda request, timeout: fake.open(request, timeout)
    )
    return fake


@pytest.fixture
def pool(monkeypatch: pytest.MonkeyPatch) -> Iterator[Pool]:
    """A pool with the template's web client, a Google IdP, and the function's environment
    (only its contract variables); every Cognito call the function makes is recorded."""
    with mock_aws():
        cognito = boto3.client("cognito-idp", region_name=REGION)
        pool_id = cognito.create_user_pool(PoolName="agent-builder-users")["UserPool"]["Id"]
        cognito.create_identity_provider(
            UserPoolId=pool_id,
            ProviderName="Google",
            ProviderType="Google",
            ProviderDetails={"client_id": "x", "client_secret": "y", "authorize_scopes": "openid"},
        )
        client_id = cognito.create_user_pool_client(
            UserPoolId=pool_id, **client_create_arguments(TEMPLATE_CLIENT)
        )["UserPoolClient"]["ClientId"]
        monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "agent-builder-idp-reconcile")
        monkeypatch.setenv("USER_POOL_ID", pool_id)
        monkeypatch.setenv("USER_POOL_CLIENT_ID", client_id)
        wiring.reset()
        calls: list[tuple[str, dict[str, Any]]] = []

        def record(model: Any, params: dict[str, Any], **_: Any) -> None:
            calls.append((model.name, copy.deepcopy(params)))

        clients.client("cognito-idp").meta.events.register(
            "provide-client-params.cognito-idp.*", record
        )
        yield Pool(cognito, pool_id, client_id, calls)
        wiring.reset()


def invoke(event: dict[str, Any], context: Context | None = None) -> dict[str, Any]:
    from handlers import idp_reconcile

    return idp_reconcile.handler(event, context or Context())  # type: ignore[arg-type]


def settings_but_providers(described: dict[str, Any]) -> dict[str, Any]:
    return {
        key: value
        for key, value in described.items()
        if key not in ("SupportedIdentityProviders", "LastModifiedDate")
    }


# ---- after a deploy ---------------------------------------------------------------------


def test_org_providers_dropped_by_a_deploy_come_back_and_every_other_setting_stays(
    pool: Pool, cloudformation: CloudFormation
) -> None:
    for org in ORGS:
        pool.add_saml(f"org-{org}")
    pool.deploy()
    assert pool.providers() == ["COGNITO", "Google"]  # what every deploy did so far
    before = settings_but_providers(pool.describe())

    assert invoke(request("Update")) == {"result": "SUCCESS"}

    assert pool.providers() == ["COGNITO", "Google", *(f"org-{org}" for org in ORGS)]
    after = pool.describe()
    assert settings_but_providers(after) == before
    assert after["CallbackURLs"] == [CONSOLE]
    assert after["AllowedOAuthFlows"] == ["code"]
    assert after["AllowedOAuthScopes"] == TEMPLATE_CLIENT["AllowedOAuthScopes"]
    assert after["TokenValidityUnits"] == TEMPLATE_CLIENT["TokenValidityUnits"]
    assert (after["AccessTokenValidity"], after["RefreshTokenValidity"]) == (60, 43200)
    answer = cloudformation.answer
    assert answer["Status"] == "SUCCESS"
    assert answer["PhysicalResourceId"] == "org-identity-providers"
    assert answer["Data"] == {"Added": "2"}
    assert (answer["LogicalResourceId"], answer["RequestId"]) == (
        "OrgIdpReconcileB0E446DA",
        "3f1c0d6e-0000-4000-8000-000000000001",
    )
    assert cloudformation.urls == [RESPONSE_URL]


def test_the_write_carries_every_field_so_cognito_resets_nothing(
    pool: Pool, cloudformation: CloudFormation
) -> None:
    """UpdateUserPoolClient resets what it is not given (moto merges instead): the one
    write must name every writable field the client has."""
    pool.add_saml(f"org-{ORGS[0]}")
    pool.deploy()
    described = set(pool.describe()) & writable_client_fields()

    invoke(request("Update"))

    [write] = pool.updates()
    assert described <= set(write)
    assert write["SupportedIdentityProviders"] == ["COGNITO", "Google", f"org-{ORGS[0]}"]


def test_the_first_create_puts_back_providers_of_a_platform_deployed_before_the_fix(
    pool: Pool, cloudformation: CloudFormation
) -> None:
    pool.add_saml(f"org-{ORGS[0]}")

    invoke(request("Create"))

    assert pool.providers() == ["COGNITO", "Google", f"org-{ORGS[0]}"]
    assert cloudformation.answer["Status"] == "SUCCESS"
    assert cloudformation.answer["PhysicalResourceId"] == "org-identity-providers"


def test_more_than_a_page_of_org_providers_all_come_back(
    pool: Pool, cloudformation: CloudFormation
) -> None:
    names = [f"org-{n:04d}" for n in range(65)]  # ListIdentityProviders pages at 60
    for name in names:
        pool.add_saml(name)
    pool.deploy()

    invoke(request("Update"))

    assert pool.providers() == ["COGNITO", "Google", *names]
    lists = [params for name, params in pool.calls if name == "ListIdentityProviders"]
    assert any("NextToken" in params for params in lists)
    assert cloudformation.answer["Data"] == {"Added": "65"}


def test_a_pool_without_org_providers_leaves_the_client_untouched(
    pool: Pool, cloudformation: CloudFormation
) -> None:
    pool.deploy()
    before = pool.describe()

    invoke(request("Update"))

    assert pool.updates() == []
    assert pool.describe() == before
    assert cloudformation.answer["Status"] == "SUCCESS"
    assert cloudformation.answer["Data"] == {"Added": "0"}


def test_a_client_that_already_offers_every_org_provider_is_not_written(
    pool: Pool, cloudformation: CloudFormation
) -> None:
    pool.add_saml(f"org-{ORGS[0]}")
    pool.deploy(
        {**TEMPLATE_CLIENT, "SupportedIdentityProviders": ["COGNITO", "Google", f"org-{ORGS[0]}"]}
    )

    invoke(request("Update"))

    assert pool.updates() == []
    assert cloudformation.answer["Status"] == "SUCCESS"


def test_a_runtime_write_that_raced_the_deploy_does_not_undo_the_deploys_settings(
    pool: Pool, cloudformation: CloudFormation
) -> None:
    """PUT /org/sso read the client before CloudFormation's write and wrote after it: its
    write has the org-* providers but the old callback URL. The reconcile, which runs after
    the client's update, writes the template's settings back."""
    old = {**TEMPLATE_CLIENT, "CallbackURLs": ["https://old.example.com/"]}
    pool.add_saml(f"org-{ORGS[0]}")
    pool.deploy()  # the new template
    pool.deploy({**old, "SupportedIdentityProviders": ["COGNITO", "Google", f"org-{ORGS[0]}"]})

    invoke(request("Update", old_client=old))

    after = pool.describe()
    assert after["CallbackURLs"] == [CONSOLE]
    assert after["SupportedIdentityProviders"] == ["COGNITO", "Google", f"org-{ORGS[0]}"]


def test_delete_answers_success_and_calls_nothing(
    pool: Pool, cloudformation: CloudFormation
) -> None:
    pool.add_saml(f"org-{ORGS[0]}")

    assert invoke(request("Delete")) == {"result": "SUCCESS"}

    assert pool.calls == []
    assert cloudformation.answer["Status"] == "SUCCESS"
    assert cloudformation.answer["PhysicalResourceId"] == "org-identity-providers"


def test_the_schedule_puts_dropped_providers_back_without_answering_anyone(
    pool: Pool, cloudformation: CloudFormation
) -> None:
    pool.add_saml(f"org-{ORGS[1]}")
    pool.deploy()

    assert invoke(SCHEDULED_EVENT) == {"result": "reconciled"}
    assert pool.providers() == ["COGNITO", "Google", f"org-{ORGS[1]}"]
    assert invoke(SCHEDULED_EVENT) == {"result": "unchanged"}
    assert len(pool.updates()) == 1
    assert cloudformation.answers == []


def test_a_request_without_cloudformations_response_url_is_neither_acted_on_nor_answered(
    pool: Pool, cloudformation: CloudFormation
) -> None:
    event = {**request("Update"), "ResponseURL": "https://attacker.example.com/collect"}

    assert invoke(event) == {"result": "refused"}
    assert pool.calls == []
    assert cloudformation.answers == []


def test_a_request_without_the_client_property_fails_saying_so(
    pool: Pool, cloudformation: CloudFormation
) -> None:
    event = request("Update")
    del event["ResourceProperties"]["Client"]

    invoke(event)

    assert cloudformation.answer["Status"] == "FAILED"
    assert "Client property" in cloudformation.answer["Reason"]


# ---- template properties, as CloudFormation hands them over --------------------------------


def test_template_properties_arrive_as_strings_and_are_read_in_the_apis_shapes() -> None:
    settings = template_settings(as_cloudformation_sends(TEMPLATE_CLIENT))

    assert settings["AccessTokenValidity"] == 60
    assert settings["AllowedOAuthFlowsUserPoolClient"] is True
    assert settings["EnableTokenRevocation"] is True
    assert settings["TokenValidityUnits"] == TEMPLATE_CLIENT["TokenValidityUnits"]
    assert settings["CallbackURLs"] == [CONSOLE]
    # Not writable by UpdateUserPoolClient: left to CloudFormation.
    assert "GenerateSecret" not in settings


@pytest.mark.parametrize(
    ("name", "value"),
    [("AccessTokenValidity", "an hour"), ("EnableTokenRevocation", "yes"), ("CallbackURLs", "x")],
)
def test_a_template_property_that_fits_no_api_shape_is_named(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        template_settings({**as_cloudformation_sends(TEMPLATE_CLIENT), name: value})


# ---- failures: a stand-in gateway ------------------------------------------------------------


def _error(code: str) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": f"{code} happened"}}, "UpdateUserPoolClient"
    )


class FlakyProviders:
    """SamlProviders.reconcile that fails with `errors` first, then succeeds."""

    def __init__(self, *errors: BaseException, forever: BaseException | None = None) -> None:
        self.errors = list(errors)
        self.forever = forever
        self.attempts = 0

    def reconcile(self, template: Any = None) -> ClientReconciled:
        self.attempts += 1
        if self.forever is not None:
            raise self.forever
        if self.errors:
            raise self.errors.pop(0)
        return ClientReconciled(added=("org-x",), wrote=True)


@dataclass
class Clock:
    """Lambda's remaining time, spent by the service's sleeps."""

    remaining_ms: int = 120_000
    slept: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.remaining_ms -= int(seconds * 1000)


def service(providers: Any, clock: Clock) -> IdpReconcileService:
    return IdpReconcileService(providers, ResponseSender(), sleep=clock.sleep)


def run(providers: Any, clock: Clock, event: dict[str, Any] | None = None) -> Callable[[], str]:
    return lambda: service(providers, clock).handle(
        event or request("Update"), remaining_ms=lambda: clock.remaining_ms
    )


@pytest.mark.parametrize(
    "transient",
    [
        _error("TooManyRequestsException"),
        _error("InternalErrorException"),
        _error("AccessDeniedException"),  # IAM not yet letting a new role act
        _error("InvalidParameterException"),  # a provider deleted under the write
        RuntimeError("the web client's identity providers did not settle"),
        EndpointConnectionError(endpoint_url="https://cognito-idp.us-east-1.amazonaws.com"),
    ],
)
def test_transient_failures_are_tried_again_with_backoff(
    transient: BaseException, cloudformation: CloudFormation
) -> None:
    providers, clock = FlakyProviders(transient, transient), Clock()

    assert run(providers, clock)() == "SUCCESS"

    assert providers.attempts == 3
    assert clock.slept == [1.0, 2.0]
    assert cloudformation.answer["Status"] == "SUCCESS"


def test_a_failure_that_outlasts_the_time_left_fails_the_update_with_a_clear_reason(
    cloudformation: CloudFormation,
) -> None:
    providers, clock = FlakyProviders(forever=_error("AccessDeniedException")), Clock()

    assert run(providers, clock)() == "FAILED"

    assert clock.remaining_ms >= 20_000  # stopped in time to answer
    assert providers.attempts > 3
    reason = cloudformation.answer["Reason"]
    assert "AccessDeniedException: AccessDeniedException happened" in reason
    assert f"after {providers.attempts} attempts" in reason
    assert "org-*" in reason and "deploy again" in reason


def test_a_permanent_failure_fails_at_once(cloudformation: CloudFormation) -> None:
    providers, clock = FlakyProviders(forever=_error("ResourceNotFoundException")), Clock()

    assert run(providers, clock)() == "FAILED"

    assert providers.attempts == 1
    assert clock.slept == []
    assert "ResourceNotFoundException" in cloudformation.answer["Reason"]


def test_a_template_property_the_api_cannot_take_fails_at_once_naming_it(
    cloudformation: CloudFormation,
) -> None:
    error = ValueError("the client property AccessTokenValidity is not a valid integer: 'x'")
    providers, clock = FlakyProviders(forever=error), Clock()

    assert run(providers, clock)() == "FAILED"

    assert providers.attempts == 1
    assert "AccessTokenValidity" in cloudformation.answer["Reason"]


def test_a_scheduled_run_that_keeps_failing_raises_for_lambdas_retry() -> None:
    providers, clock = FlakyProviders(forever=_error("TooManyRequestsException")), Clock()

    with pytest.raises(Exception, match="TooManyRequestsException"):
        run(providers, clock, SCHEDULED_EVENT)()


def test_delete_never_fails_even_when_cognito_would(cloudformation: CloudFormation) -> None:
    providers, clock = FlakyProviders(forever=_error("ResourceNotFoundException")), Clock()

    assert run(providers, clock, request("Delete"))() == "SUCCESS"
    assert providers.attempts == 0
