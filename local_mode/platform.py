"""Local mode assembled: emulator, resources, functions, gateway and plumbing."""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from http import HTTPStatus
from pathlib import Path
from typing import Any

from local_mode.assembly import (
    ROOT,
    TemplateError,
    dependency_closure,
    load_stacks,
    stack_with_handler,
)
from local_mode.budgets import publish_alert, template_budget
from local_mode.console import Console, local_config
from local_mode.emulator import DEFAULT_ACCOUNT_ID, MotoEmulator, Provisioner
from local_mode.federation import OIDC_SCOPES, CognitoStandIn, install_link_provider_stand_in
from local_mode.functions import (
    Functions,
    function_specs,
    register_configurations,
    shared_environment,
)
from local_mode.gateway import Gateway, LocalServices, SignInRefused, api_definition
from local_mode.github_bridge import LocalGitHub
from local_mode.http_server import serve
from local_mode.identity_center import IdentityCenterStandIn
from local_mode.jwt_check import Authorizer, JwtVerifier
from local_mode.plumbing import (
    CustomerClusters,
    EcsWatcher,
    EventBus,
    QueuePoller,
    SchedulerEmulator,
    Ticker,
    install_s3_response_transport,
    is_ecs_task_state_change,
    response_bucket,
    rule_targets,
    scheduled_event,
    sns_lambda_event,
)
from local_mode.task_executor import TaskExecutor
from local_mode.templates import Resolver

OPENAPI = ROOT / "dist" / "openapi.json"

# A claims provider: e-mail -> the ID-token claims its IdP would send for that person
# ({sub, email, email_verified, name, picture}); `/_local/sign-in {"provider": name}`.
ClaimsProvider = Callable[[str], Mapping[str, Any]]
# /_local/sign-in's provider names -> the IdP's ProviderName in the user pool.
PROVIDER_NAMES = {"google": "Google", "github": "GitHub"}

log = logging.getLogger("local_mode")


@dataclass(frozen=True)
class Options:
    cdk_out: Path
    aws_port: int = 4566
    api_port: int = 8080
    region: str = "us-east-1"
    task_poll_seconds: float = 1.0
    scheduler_poll_seconds: float = 1.0
    queue_poll_seconds: float = 0.2
    schedule_seconds: float | None = None  # rate(...) rules fire at their own rate
    stop_grace_seconds: float = 10.0

    @classmethod
    def from_environment(cls, cdk_out: Path) -> Options:
        def number(name: str, default: float) -> float:
            raw = os.environ.get(name, "").strip()
            return float(raw) if raw else default

        task_poll = number("LOCAL_TASK_POLL_SECONDS", 1.0)
        return cls(
            cdk_out=cdk_out,
            aws_port=int(number("LOCAL_AWS_PORT", 4566)),
            api_port=int(number("LOCAL_API_PORT", 8080)),
            region=os.environ.get("LOCAL_AWS_REGION", "").strip() or "us-east-1",
            task_poll_seconds=task_poll,
            scheduler_poll_seconds=number("LOCAL_SCHEDULER_POLL_SECONDS", task_poll),
            queue_poll_seconds=number("LOCAL_QUEUE_POLL_SECONDS", 0.2),
            schedule_seconds=number("LOCAL_SWEEPER_SECONDS", 0) or None,
            stop_grace_seconds=number("LOCAL_STOP_GRACE_SECONDS", 10.0),
        )


def ensure_port_free(port: int, what: str) -> None:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise SystemExit(
                f"127.0.0.1:{port} ({what}) is already in use: stop what listens there or "
                f"choose another port (LOCAL_AWS_PORT / LOCAL_API_PORT)"
            ) from None


class LocalPlatform:
    def __init__(
        self, options: Options, *, claims_providers: Mapping[str, ClaimsProvider] | None = None
    ) -> None:
        self.options = options
        # `google` is fabricated here unless one is given; `github` needs one (the bridge's).
        self.claims_providers: dict[str, ClaimsProvider] = {
            "google": google_claims,
            **(claims_providers or {}),
        }
        self.account_id = DEFAULT_ACCOUNT_ID
        self.emulator = MotoEmulator(options.aws_port, options.region)
        self.api_url = f"http://127.0.0.1:{options.api_port}"
        self._tickers: list[Ticker] = []
        self._server: Any = None
        self._server_thread: threading.Thread | None = None
        self.started_in: float | None = None

    # ---- start ----------------------------------------------------------------------

    def start(self) -> None:
        began = time.perf_counter()
        options = self.options
        ensure_port_free(options.aws_port, "the AWS emulator")
        ensure_port_free(options.api_port, "the HTTP API")
        stacks = load_stacks(options.cdk_out)
        api_stack, _ = stack_with_handler(stacks, "handlers.api.handler")
        platform_stacks = dependency_closure(stacks, api_stack)

        self.emulator.start()
        install_link_provider_stand_in()
        provisioner = Provisioner(self.emulator, self.account_id)
        self.resolver = resolver = Resolver(
            platform_stacks, provisioner, region=options.region, account_id=self.account_id
        )
        for stack in platform_stacks:
            resolver.provision_all(stack)

        specs = function_specs(resolver, api_stack)
        self.environment = shared_environment(specs)
        # The functions run in this process: their settings are this process's
        # environment, pointed at the emulator (boto3 honours AWS_ENDPOINT_URL).
        os.environ.update(self.environment)
        os.environ.update(self.emulator.environment())
        # IAM Identity Center (sso-oidc, sso) stands in on the API port, like Bedrock; its
        # role credentials are the emulated accounts' own.
        self.identity_center = IdentityCenterStandIn(
            base_url=self.api_url, credentials_in=self.emulator.credentials_in
        )
        os.environ.update(self.identity_center.endpoints())
        os.environ["SAML_METADATA_ALLOW_PRIVATE"] = "true"
        # The registration function answers CloudFormation only in CloudFormation's
        # response bucket, as in AWS: the bucket exists in the emulator and urllib's
        # https requests to it go there (customer.py reads the answers back).
        self._create_response_bucket()
        install_s3_response_transport(self.emulator.endpoint)
        level = os.environ.get("LOCAL_FUNCTION_LOG_LEVEL", "").strip()
        if level:
            os.environ["POWERTOOLS_LOG_LEVEL"] = level
        self.functions = Functions(specs, region=options.region, account_id=self.account_id)
        self.functions.load_all()  # a handler the template names but lambda_src lacks: now
        # A cold start for every function: nothing built for an earlier platform in this
        # process (its clients point at that platform's emulator) carries over.
        from agent_builder import wiring

        wiring.reset()
        register_configurations(self.emulator.client("lambda"), resolver, api_stack, specs)
        self.rules = rule_targets(api_stack)
        # GitHub sign-in through the bridge, when the templates have it (github_bridge.py).
        self.github = LocalGitHub.start(
            stacks, resolver, self.emulator, region=options.region, account_id=self.account_id
        )
        if self.github is not None:
            # `/_local/sign-in {"provider": "github"}` runs the bridge's real flow.
            self.claims_providers.setdefault("github", self.github.github_claims)
        self._api_stack = api_stack

        api, jwt = api_definition(resolver, api_stack)
        api.account_id = self.account_id
        configuration = jwt.get("JwtConfiguration", {})
        issuer = str(configuration.get("Issuer", ""))
        audience = tuple(str(a) for a in configuration.get("Audience", []))
        if not issuer or not audience:
            raise TemplateError("the HTTP API has no JWT authorizer with issuer and audience")
        self.user_pool_id = issuer.rsplit("/", 1)[-1]
        self.client_id = audience[0]
        self.cognito = CognitoStandIn(
            self.account_id, options.region, self.user_pool_id, self.client_id
        )
        self.api_scopes = tuple(sorted({s for route in api.routes for s in route.scopes}))
        self.sign_up_triggers = self._sign_up_triggers(specs)
        source = str((jwt.get("IdentitySource") or ["$request.header.Authorization"])[0])
        header = source.removeprefix("$request.header.").lower()
        verifier = JwtVerifier(
            Authorizer(issuer=issuer, audience=audience, identity_header=header),
            f"{self.emulator.endpoint}/{self.user_pool_id}/.well-known/jwks.json",
        )
        self.sns_routes = self._subscribe_sns(api_stack)
        self._platform_stacks = platform_stacks
        self.gateway = Gateway(
            api,
            verifier,
            self.functions.invoke,
            LocalServices(
                sign_in=self.sign_in,
                openapi_path=OPENAPI,
                deliver_sns=self.deliver_sns,
                info=self.info,
                budget_notification=self.budget_notification,
                identity_center=self.identity_center,
            ),
        )
        console = Console(lambda: local_config(self.environment, options.region))
        self._server = serve(self.gateway, options.api_port, console)
        self._server_thread = threading.Thread(
            target=self._server.serve_forever, name="http-api", daemon=True
        )
        self._server_thread.start()
        self._start_plumbing()
        self.gateway.ready.set()
        self.started_in = time.perf_counter() - began

    def _start_plumbing(self) -> None:
        options = self.options
        ecs = self.emulator.client("ecs")
        cluster_arn = self.environment["CLUSTER_ARN"]
        task_events = [rule.handler for rule in self.rules if is_ecs_task_state_change(rule)]
        if len(task_events) != 1:
            raise TemplateError(
                f"expected one ECS task state change rule targeting a function, found {task_events}"
            )
        self.bus = EventBus(self.functions.invoke, task_events[0])
        self.bus.start()
        runner_env = {
            **self.emulator.environment(),
            "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": f"{self.api_url}/_local/bedrock",
        }
        self.executor = TaskExecutor(
            ecs=ecs,
            logs=self.emulator.client("logs"),
            deliver=self.bus.put,
            stamp=lambda arn, **fields: self.emulator.stamp_task(arn, self.account_id, **fields),
            process_environment=runner_env,
            account_id=self.account_id,
            region=options.region,
            stop_grace_seconds=options.stop_grace_seconds,
        )
        watcher = EcsWatcher(ecs, cluster_arn, self.executor)
        self.customers = CustomerClusters(
            discover=lambda: [
                account
                for account in self.emulator.accounts_with_clusters()
                if account != self.account_id
            ],
            executor_for=self._customer_executor,
        )
        self.scheduler = SchedulerEmulator(self.emulator.client("scheduler"), self.emulator.client)
        self._tickers = [
            Ticker("ecs-watcher", options.task_poll_seconds, watcher.tick),
            Ticker("customer-clusters", options.task_poll_seconds, self.customers.tick),
            Ticker("scheduler", options.scheduler_poll_seconds, self.scheduler.tick),
        ]
        for rule in self.rules:
            if rule.period_seconds is None:
                continue
            arn = self.resolver.physical(self._api_stack, rule.logical_id).attributes["Arn"]
            self._tickers.append(
                Ticker(
                    f"rule-{rule.logical_id}",
                    options.schedule_seconds or rule.period_seconds,
                    functools.partial(self._fire_rule, rule.handler, str(arn)),
                )
            )
        for poller in self.queue_pollers:
            self._tickers.append(
                Ticker(f"sqs-{poller.handler}", options.queue_poll_seconds, poller.tick)
            )
        for ticker in self._tickers:
            ticker.start()

    def _fire_rule(self, handler: str, rule_arn: str) -> None:
        self.functions.invoke(
            handler, scheduled_event(self.account_id, self.options.region, rule_arn)
        )

    def _customer_executor(self, account_id: str) -> tuple[Any, TaskExecutor]:
        """ECS and logs clients, and an executor whose runners act, in `account_id`."""
        credentials = self.emulator.credentials_in(account_id)
        ecs = self.emulator.client("ecs", credentials=credentials)
        runner_env = {
            **self.emulator.environment(),
            "AWS_ACCESS_KEY_ID": credentials["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": credentials["aws_secret_access_key"],
            "AWS_SESSION_TOKEN": credentials["aws_session_token"],
            "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": f"{self.api_url}/_local/bedrock",
        }
        executor = TaskExecutor(
            ecs=ecs,
            logs=self.emulator.client("logs", credentials=credentials),
            deliver=lambda event: None,  # AWS delivers no events from customer accounts
            stamp=lambda arn, **fields: self.emulator.stamp_task(arn, account_id, **fields),
            process_environment=runner_env,
            account_id=account_id,
            region=self.options.region,
            stop_grace_seconds=self.options.stop_grace_seconds,
        )
        return ecs, executor

    def _executors(self) -> list[TaskExecutor]:
        executors = [self.executor] if hasattr(self, "executor") else []
        if hasattr(self, "customers"):
            executors += self.customers.executors
        return executors

    def _create_response_bucket(self) -> None:
        s3 = self.emulator.client("s3")
        kwargs: dict[str, Any] = {"Bucket": response_bucket(self.options.region)}
        if self.options.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.options.region}
        s3.create_bucket(**kwargs)

    def _subscribe_sns(self, stack: Any) -> dict[str, str]:
        """The template's SNS subscriptions: a queue's is made in the emulator (moto
        delivers SNS to SQS), a function's becomes an HTTP subscription to us; each SQS
        event source mapping becomes a poller (found by type, not by logical id)."""
        sns = self.emulator.client("sns")
        handlers = {
            logical_id: resource["Properties"].get("Handler")
            for logical_id, resource in stack.functions()
        }
        routes: dict[str, str] = {}
        self.queue_pollers: list[QueuePoller] = []
        for logical_id, resource in stack.resources.items():
            properties = resource.get("Properties", {})
            if resource["Type"] == "AWS::SNS::Subscription" and properties.get("Protocol") == "sqs":
                topic = self.resolver.resolve(stack, properties["TopicArn"])
                queue_arn = self.resolver.resolve(stack, properties["Endpoint"])
                attributes = {}
                if properties.get("RawMessageDelivery") is not None:
                    attributes["RawMessageDelivery"] = str(properties["RawMessageDelivery"]).lower()
                sns.subscribe(
                    TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes=attributes
                )
                log.debug("SNS %s -> SQS %s (%s)", topic, queue_arn, logical_id)
                continue
            if resource["Type"] == "AWS::Lambda::EventSourceMapping":
                poller = self._queue_poller(stack, properties, handlers)
                if poller is not None:
                    self.queue_pollers.append(poller)
                continue
            if (
                resource["Type"] != "AWS::SNS::Subscription"
                or properties.get("Protocol") != "lambda"
            ):
                continue
            endpoint = properties.get("Endpoint", {})
            function = endpoint.get("Fn::GetAtt", [None])[0] if isinstance(endpoint, dict) else None
            handler = handlers.get(function)
            if not handler:
                continue
            topic = self.resolver.resolve(stack, properties["TopicArn"])
            sns.subscribe(
                TopicArn=topic,
                Protocol="http",
                Endpoint=f"{self.api_url}/_local/sns/{function}",
            )
            routes[str(function)] = str(handler)
            log.debug("SNS %s -> %s (%s)", topic, handler, logical_id)
        return routes

    def _queue_poller(
        self, stack: Any, properties: dict[str, Any], handlers: dict[str, Any]
    ) -> QueuePoller | None:
        """An event source mapping of a queue of this stack to one of its functions."""
        source = properties.get("EventSourceArn")
        queue_id = source.get("Fn::GetAtt", [None])[0] if isinstance(source, dict) else None
        function = properties.get("FunctionName")
        function_id = function.get("Ref") if isinstance(function, dict) else None
        handler = handlers.get(str(function_id))
        queue = stack.resources.get(str(queue_id)) if queue_id else None
        if not handler or queue is None or queue["Type"] != "AWS::SQS::Queue":
            return None
        physical = self.resolver.physical(stack, str(queue_id))
        return QueuePoller(
            self.emulator.client("sqs"),
            queue_url=physical.ref,
            queue_arn=str(physical.attributes["Arn"]),
            region=self.options.region,
            handler=str(handler),
            invoke=self.functions.invoke,
            batch_size=int(properties.get("BatchSize", 1)),
        )

    # ---- what /_local/ does ---------------------------------------------------------

    def _sign_up_triggers(self, specs: dict[str, Any]) -> dict[str, str]:
        """The pool's LambdaConfig (as the template set it) -> the handlers it names."""
        config = (
            self.emulator.client("cognito-idp")
            .describe_user_pool(UserPoolId=self.user_pool_id)["UserPool"]
            .get("LambdaConfig")
            or {}
        )
        by_name = {spec.name: handler for handler, spec in specs.items()}
        triggers = {}
        for trigger in ("PreSignUp", "PostConfirmation"):
            arn = str(config.get(trigger, ""))
            if arn:
                name = arn.rsplit(":", 1)[-1]
                if name not in by_name:
                    raise TemplateError(f"the user pool's {trigger} trigger {name} is no function")
                triggers[trigger] = by_name[name]
        return triggers

    def _trigger(
        self, trigger: str, source: str, username: str, attributes: dict[str, str]
    ) -> None:
        """Invoke the pool's trigger as Cognito does; a failure refuses the sign-in with
        Cognito's own wording ("PreSignUp failed with error ...")."""
        handler = self.sign_up_triggers.get(trigger)
        if handler is None:
            return
        event = {
            "version": "1",
            "region": self.options.region,
            "userPoolId": self.user_pool_id,
            "userName": username,
            "callerContext": {"awsSdkVersion": "local-mode", "clientId": self.client_id},
            "triggerSource": source,
            "request": {"userAttributes": attributes, "validationData": None},
            "response": {}
            if trigger == "PostConfirmation"
            else {"autoConfirmUser": False, "autoVerifyEmail": False, "autoVerifyPhone": False},
        }
        try:
            self.functions.invoke(handler, event)
        except Exception as exc:
            log.info("%s refused the sign-in: %s", trigger, exc)
            raise SignInRefused(
                HTTPStatus.BAD_REQUEST, "SIGN_UP_REFUSED", f"{trigger} failed with error {exc}."
            ) from exc

    def sign_in(self, email: str, provider: str | None = None) -> dict[str, Any]:
        """Tokens as the hosted sign-in page gives them, for `email` signing in with
        e-mail (no provider) or through `provider`, through the pool's triggers."""
        if provider is None:
            return self._sign_in_with_email(email.strip().lower())
        return self._sign_in_federated(provider, email.strip())

    def _scopes(self) -> tuple[str, ...]:
        return (*OIDC_SCOPES, *self.api_scopes)

    def _sign_in_with_email(self, email: str) -> dict[str, Any]:
        """A self sign-up confirmed with the e-mailed code, on first sign-in."""
        cognito = self.emulator.client("cognito-idp")
        users = cognito.list_users(UserPoolId=self.user_pool_id, Filter=f'email = "{email}"')
        native = [u for u in users["Users"] if u.get("UserStatus") != "EXTERNAL_PROVIDER"]
        if native:
            return self.cognito.tokens(native[0]["Username"], self._scopes())
        self._trigger("PreSignUp", "PreSignUp_SignUp", email, {"email": email})
        created = cognito.admin_create_user(
            UserPoolId=self.user_pool_id,
            Username=email,
            UserAttributes=[
                {"Name": "email", "Value": email},
                {"Name": "email_verified", "Value": "true"},
            ],
            MessageAction="SUPPRESS",
        )["User"]
        attributes = {a["Name"]: a["Value"] for a in created["Attributes"]}
        self._trigger(
            "PostConfirmation",
            "PostConfirmation_ConfirmSignUp",
            created["Username"],
            {**attributes, "cognito:user_status": "CONFIRMED"},
        )
        return self.cognito.tokens(created["Username"], self._scopes())

    def _claims(self, provider: str, email: str) -> tuple[str, Mapping[str, Any]]:
        """The IdP's ProviderName and the claims it sends for `email`."""
        if provider.startswith("org-"):
            if not self.cognito.has_identity_provider(provider):
                raise SignInRefused(
                    HTTPStatus.NOT_FOUND,
                    "IDENTITY_PROVIDER_NOT_FOUND",
                    f"the user pool has no identity provider {provider}: configure the "
                    "organisation's SSO first (PUT /org/sso)",
                )
            return provider, saml_claims(email)
        claims = self.claims_providers.get(provider)
        if claims is None:
            if provider == "github":
                raise SignInRefused(
                    HTTPStatus.BAD_REQUEST,
                    "PROVIDER_NOT_CONFIGURED",
                    "GitHub sign-in is not configured (the OIDC bridge provides it)",
                )
            raise SignInRefused(
                HTTPStatus.BAD_REQUEST,
                "VALIDATION_ERROR",
                f"unknown provider {provider!r}: google, github or org-<organizationId>",
            )
        return PROVIDER_NAMES.get(provider, provider), claims(email)

    def _sign_in_federated(self, provider: str, email: str) -> dict[str, Any]:
        name, claims = self._claims(provider, email)
        subject = str(claims.get("sub") or "")
        if not subject:
            raise SignInRefused(
                HTTPStatus.BAD_GATEWAY, "PROVIDER_ERROR", f"{provider} sent no subject (sub)"
            )
        linked = self.cognito.linked_user(name, subject)
        if linked is not None:
            return self.cognito.tokens(linked, self._scopes())
        if self.cognito.federated_user(name, subject) is not None:
            return self.cognito.tokens(f"{name}_{subject}", self._scopes())
        attributes = {
            key: ("true" if value else "false") if isinstance(value, bool) else str(value)
            for key, value in claims.items()
            if key in ("email", "email_verified", "name", "picture") and value is not None
        }
        username = f"{name}_{subject}"
        self._trigger("PreSignUp", "PreSignUp_ExternalProvider", username, attributes)
        linked = self.cognito.linked_user(name, subject)
        if linked is not None:
            # Cognito ends this first sign-in with "Already found an entry for username";
            # signing in again resolves the link, which is what happens here at once.
            return self.cognito.tokens(linked, self._scopes())
        user = self.cognito.create_federated_user(name, subject, attributes)
        self._trigger(
            "PostConfirmation",
            "PostConfirmation_ConfirmSignUp",
            username,
            {**attributes, "sub": user.id, "cognito:user_status": "EXTERNAL_PROVIDER"},
        )
        return self.cognito.tokens(username, self._scopes())

    def deliver_sns(self, function: str, message: dict[str, Any]) -> None:
        handler = self.sns_routes.get(function)
        if message.get("Type") == "SubscriptionConfirmation":
            return
        if handler is None:
            log.warning("an SNS message for %s, which no subscription names: dropped", function)
            return
        subscription = f"{message.get('TopicArn')}:local-{function}"
        result = self.functions.invoke(handler, sns_lambda_event(message, subscription))
        log.info("SNS message %s -> %s: %s", message.get("MessageId"), handler, result)

    def budget_notification(self, percent: Decimal) -> dict[str, Any]:
        """AWS Budgets' alert at `percent` of the template's budget, to the budget topic
        (local_mode/budgets.py): SNS delivers it to the kill switch."""
        budget = template_budget(self._platform_stacks)
        topic = self.environment.get("BUDGET_TOPIC_ARN", "")
        message_id = publish_alert(
            self.emulator.client("sns"), topic, budget, percent=percent, account_id=self.account_id
        )
        return {"messageId": message_id, "topicArn": topic, "budgetName": budget.name}

    def info(self) -> dict[str, Any]:
        running = [task for executor in self._executors() for task in executor.running()]
        return {
            "api": self.api_url,
            "aws": self.emulator.endpoint,
            "region": self.options.region,
            "accountId": self.account_id,
            "userPoolId": self.user_pool_id,
            "clientId": self.client_id,
            # The platform's topic, as the Launch Stack link passes it (customer.py).
            "registrationTopicArn": self.environment.get("REGISTRATION_TOPIC_ARN", ""),
            "runningTasks": len(running),
            "githubSignIn": self.github is not None,
            "startedInSeconds": round(self.started_in or 0, 3),
        }

    # ---- stop -----------------------------------------------------------------------

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for ticker in self._tickers:
            ticker.stop()
        for ticker in self._tickers:
            ticker.join(timeout=10)
        for executor in self._executors():
            executor.shutdown()
        if hasattr(self, "bus"):
            self.bus.stop()
        github: LocalGitHub | None = getattr(self, "github", None)
        if github is not None:
            github.stop()
        self.emulator.stop()


def google_claims(email: str) -> dict[str, Any]:
    """What Google sends for `email` (local mode's fabrication): a stable numeric subject
    per address, the address verified."""
    address = email.strip().lower()
    digest = int(hashlib.sha256(address.encode()).hexdigest()[:16], 16)
    return {
        "sub": str(10**20 + digest % 10**20),
        "email": address,
        "email_verified": True,
        "name": address.split("@", 1)[0],
        "picture": "https://lh3.googleusercontent.com/a/local-mode",
    }


def saml_claims(email: str) -> dict[str, Any]:
    """What an organisation's SAML IdP (IAM Identity Center) asserts: the address as the
    subject and e-mail, no `email_verified` (SAML has none), so it is never linked."""
    address = email.strip()
    return {"sub": address.lower(), "email": address, "name": address.split("@", 1)[0]}
