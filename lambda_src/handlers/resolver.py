"""What every HTTP API function shares: its resolver, errors, role check and answers.

The HTTP API is served by two functions (constructs/control_plane_api.py routes each
path to one): `handlers.api` (profiles, agents, runs, connected accounts, the caller's
audit trail) and `handlers.org_api` (Tier 3: everything under /org). Each builds its
resolver here, so both read bodies, check roles and shape errors the same way:

- errors become HTTP here and only here: domain exceptions carry their status and code,
  request validation is 400, anything else is a 500 that is logged as a bug; the body of
  every error is {"error": {"code", "message"}};
- every route's role check runs in one middleware (`enforce_access`), from the policy
  table agent_builder.access.POLICY, before the route's code.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Query

from agent_builder import access as access_module
from agent_builder.access import Access, Membership
from agent_builder.errors import DomainError
from agent_builder.services.caller import Caller
from agent_builder.validation import MAX_BODY_BYTES
from handlers.body import JsonBodyValidation
from handlers.schemas import ErrorBody

logger = Logger(child=True)

NextToken = Annotated[str | None, Query(alias="nextToken", max_length=2048)]
PageSize = Annotated[int, Query(ge=1, le=100)]

ERRORS = {
    400: "Invalid input: INVALID_BODY (the body is not UTF-8, or not base64 when it says it "
    "is) or VALIDATION_ERROR (not JSON, not an object, wrong type, unknown field, out of range)",
    401: 'No authenticated user: API Gateway\'s own {"message": "Unauthorized"}',
    403: "Not allowed for the caller's tier or role: IMAGE_NOT_ALLOWED, ROLE_NOT_ALLOWED (the "
    "caller's role in their organisation; viewers change nothing), REGION_NOT_ALLOWED (outside "
    "the organisation's allowedRegions), ORGANIZATION_CREATION_CLOSED",
    404: "Not found, or not the caller's (another organisation's resource is 404 too); "
    "NOT_IN_ORGANIZATION on /org routes for a caller in no organisation",
    409: "Conflict (Idempotency-Key reused, account not connected or already connected, unknown "
    "tier, AGENT_LIMIT: the caller has maxAgentsPerUser agents, ALREADY_IN_ORGANIZATION: a user "
    "is in one organisation at most, LAST_ADMIN: the last admin can neither leave nor be "
    "demoted, NO_ENTERPRISE_TARGET: the organisation has no AWS target for deployments yet, "
    "EMAIL_DOMAIN_TAKEN: another organisation's SSO has that e-mail domain, "
    "SSO_NOT_CONFIGURED: IAM Identity Center is not set up, SSO_SESSION_EXPIRED: start a new "
    "IAM Identity Center session)",
    410: "INVITATION_EXPIRED: the invitation's 7 days are over; an admin must invite again",
    422: "ROLE_VALIDATION_FAILED (which check failed), DEPLOY_FAILED (which step failed in "
    "the connected account) or INVALID_SSO_CONFIG (why the SAML metadata or the IAM Identity "
    "Center settings cannot be used)",
    429: "QUOTA_EXCEEDED or RATE_LIMITED, with a Retry-After header",
    413: f"PAYLOAD_TOO_LARGE: the body is over {MAX_BODY_BYTES} bytes (API Gateway's own "
    '{"message": "Request Entity Too Large"} over its 10 MB)',
    415: "UNSUPPORTED_MEDIA_TYPE: a body whose Content-Type is not application/json",
    503: "LAUNCH_FAILED: the run could not be started and the test was given back; "
    "CAPACITY_EXHAUSTED: every platform test slot is in use; FREE_TIER_PAUSED: the platform's "
    "free tests are spent or paused for the month. Nothing was charged; Retry-After says when",
}
# Every route that reads a body can refuse it.
BODY_ERRORS = (413, 415)


def answers(status: int, model: type | None, *errors: int, body: bool = False) -> dict[int, Any]:
    """The route's documented answers: its success and the errors it can give (with
    `body`, those of reading a body: 413 and 415). handlers/openapi.py adds API Gateway's
    own body to the GATEWAY_ANSWERS."""
    documented: dict[int, Any] = {
        status: {
            "description": HTTPStatus(status).phrase,
            "content": {"application/json": {"model": model}},
        }
        if model
        else {"description": HTTPStatus(status).phrase}
    }
    for code in sorted({400, 401, *errors, *(BODY_ERRORS if body else ())}):
        documented[code] = {
            "description": ERRORS[code],
            "content": {"application/json": {"model": ErrorBody}},
        }
    return documented


class Unauthenticated(DomainError):
    status = 401
    code = "UNAUTHENTICATED"


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body={"error": {"code": code, "message": message}},
        headers=headers,
    )


def created(model: Any) -> Response[Any]:
    return Response(HTTPStatus.CREATED, content_types.APPLICATION_JSON, model)


def accepted(model: Any) -> Response[Any]:
    return Response(HTTPStatus.ACCEPTED, content_types.APPLICATION_JSON, model)


def no_content() -> Response[None]:
    return Response(HTTPStatus.NO_CONTENT, None, None)


# What the role check needs from the function's services: the caller's stored profile
# (read consistently: a role change holds at once) and where a refusal is audited.
ProfileLoader = Callable[[str], dict[str, Any] | None]
RefusalRecorder = Callable[[Membership, str, str], None]


class HttpApi:
    """One function's resolver with the shared body reading, role check and errors."""

    def __init__(self, *, load_profile: ProfileLoader, on_refusal: RefusalRecorder) -> None:
        self.app = app = APIGatewayHttpResolver(enable_validation=True)
        # Bodies are read in one place, handlers/body.py: JSON only, 400/413/415, never 500.
        app._request_validation_middleware = JsonBodyValidation()
        self._load_profile = load_profile
        self._on_refusal = on_refusal
        self._routes: frozenset[str] | None = None
        app.use(middlewares=[self._enforce_access])
        app.exception_handler(DomainError)(_domain_error)
        app.exception_handler(RequestValidationError)(_invalid_request)
        app.not_found(_route_not_found)
        app.exception_handler(Exception)(_unexpected)

    def caller(self) -> Caller:
        """The JWT subject the API Gateway authorizer verified (e-mail if the token has
        a verified one), with the request's access rule (set by `_enforce_access`)."""
        context = self.app.current_event.request_context
        claims = context.authorizer.jwt_claim if context.get("authorizer") else {}
        subject = (claims or {}).get("sub")
        if not isinstance(subject, str) or not subject:
            raise Unauthenticated("no authenticated user on this request")
        email = claims.get("email")
        if claims.get("email_verified") in (False, "false"):
            # Only a verified address may stand for the user (invitations match it).
            email = None
        return Caller(
            user_id=subject,
            email=email if isinstance(email, str) and email else None,
            access=self.app.context.get("access"),
        )

    def route_keys(self) -> frozenset[str]:
        """`METHOD /path` of every route this function serves (OpenAPI path syntax)."""
        if self._routes is None:
            app = self.app
            self._routes = frozenset(
                f"{route.method} {route.openapi_path}"
                for route in (*app._static_routes, *app._dynamic_routes)
            )
        return self._routes

    def _enforce_access(self, router: APIGatewayHttpResolver, next_middleware: Any) -> Response:
        """Every route's role check, in one place: the rule agent_builder.access.POLICY has
        for the matched route, checked before the route runs (a launch route's once it has
        read the profile with the agent: `deferred`)."""
        route = router.context["_route"]
        key = f"{route.method} {route.openapi_path}"
        if key not in self.route_keys():
            return next_middleware(router)  # no such route: the 404 handler answers
        who = self.caller()
        access = Access(key, who.user_id, self._load_profile, on_refusal=self._on_refusal)
        rule = access.rule
        if rule.members_only or (rule.roles != access_module.EVERYONE and not rule.deferred):
            owner = router.context.get("_route_args", {}).get(rule.owner_param or "")
            access.check(owner=owner)
        router.append_context(access=access)
        return next_middleware(router)


def _domain_error(exc: DomainError) -> Response:
    logger.info("request refused", code=exc.code, status=exc.status)
    return error(exc.status, exc.code, exc.message, exc.headers or None)


def _invalid_request(exc: RequestValidationError) -> Response:
    problems = []
    for problem in exc.errors()[:10]:
        where = ".".join(str(part) for part in problem.get("loc", ()) if not isinstance(part, int))
        if problem.get("type") == "json_invalid":
            problems.append("the request body is not valid JSON")
        elif problem.get("type") == "extra_forbidden":
            problems.append(f"{where}: unknown field")
        else:
            # pydantic's message says what was expected; the input itself is not echoed.
            problems.append(f"{where}: {problem.get('msg', 'invalid')}")
    logger.info("request invalid", problems=problems)
    return error(
        HTTPStatus.BAD_REQUEST, "VALIDATION_ERROR", "; ".join(problems) or "invalid request"
    )


def _route_not_found(exc: NotFoundError) -> Response:
    return error(HTTPStatus.NOT_FOUND, "NOT_FOUND", "no such route")


def _unexpected(exc: Exception) -> Response:
    # Not a domain refusal: a bug or an AWS failure. Logged with its traceback, once.
    logger.exception("unhandled error")
    return error(
        HTTPStatus.INTERNAL_SERVER_ERROR, "INTERNAL_ERROR", "internal error; it has been logged"
    )


__all__ = [
    "ERRORS",
    "HttpApi",
    "NextToken",
    "PageSize",
    "Unauthenticated",
    "accepted",
    "answers",
    "created",
    "error",
    "no_content",
]
