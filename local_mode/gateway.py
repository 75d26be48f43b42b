"""The HTTP API on 127.0.0.1: API Gateway's part, in front of the same handlers.

Routes, the JWT authorizer and CORS come from the control-plane template
(AWS::ApiGatewayV2::Route / Authorizer / Api). Requests become HTTP API payload
v2 events; answers are translated back as API Gateway does, including its own
401 {"message":"Unauthorized"} and 404 {"message":"Not Found"}. Local-only routes
live under /_local/ without auth. The HTTP/1.1 server itself is http_server.py.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote

from local_mode import eventstream
from local_mode.identity_center import IdentityCenterStandIn
from local_mode.jwt_check import (
    JwtVerifier,
    Unauthorized,
    claims_as_api_gateway_passes_them,
)

API_HANDLER = "handlers.api.handler"
REGISTRATION_HANDLER = "handlers.registration.handler"
MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
TEXT_TYPES = re.compile(r"^(text/|application/(json|xml|x-www-form-urlencoded|.*\+json|.*\+xml))")

log = logging.getLogger("local_mode.gateway")


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    authorized: bool
    scopes: tuple[str, ...] = ()  # AuthorizationScopes: one of them must be in the token
    # The handler of the function the route's integration invokes (`module.function`).
    handler: str = API_HANDLER

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """The path parameters if this route has `method` and the (decoded) `path`."""
        if method != self.method and self.method != "ANY":
            return None
        # Exact segments: a trailing slash or an empty segment is another path, as for
        # API Gateway.
        mine, theirs = self.path.split("/"), path.split("/")
        if len(mine) != len(theirs) or not path.startswith("/"):
            return None
        parameters: dict[str, str] = {}
        for pattern, segment in zip(mine, theirs, strict=True):
            if pattern.startswith("{") and pattern.endswith("}"):
                if not segment:
                    return None
                parameters[pattern[1:-1]] = segment
            elif pattern != segment:
                return None
        return parameters

    @property
    def literal_segments(self) -> int:
        return sum(1 for part in self.path.split("/") if part and not part.startswith("{"))


@dataclass
class Cors:
    allow_origins: list[str] = field(default_factory=list)
    allow_methods: list[str] = field(default_factory=list)
    allow_headers: list[str] = field(default_factory=list)
    max_age: int | None = None

    def allows(self, origin: str | None) -> bool:
        return bool(origin) and ("*" in self.allow_origins or origin in self.allow_origins)


@dataclass
class ApiDefinition:
    routes: list[Route]
    cors: Cors
    api_id: str
    account_id: str

    def find(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        matches = [(r, p) for r in self.routes if (p := r.match(method, path)) is not None]
        if not matches:
            return None
        return max(matches, key=lambda match: match[0].literal_segments)


class SignInRefused(Exception):
    """`/_local/sign-in` cannot sign this person in: a 4xx with a code that says why."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class LocalServices:
    """What the /_local/ routes do; built by __main__ from the emulator."""

    def __init__(
        self,
        *,
        sign_in: Callable[[str, str | None], dict[str, Any]],
        openapi_path: Path,
        deliver_sns: Callable[[str, dict[str, Any]], None],
        info: Callable[[], dict[str, Any]],
        budget_notification: Callable[[Decimal], dict[str, Any]] | None = None,
        identity_center: IdentityCenterStandIn | None = None,
    ) -> None:
        self.sign_in = sign_in
        self.openapi_path = openapi_path
        self.deliver_sns = deliver_sns
        self.info = info
        self.budget_notification = budget_notification
        # IAM Identity Center's sso-oidc and sso, and the device flow's approval page.
        self.identity_center = identity_center


class Gateway:
    def __init__(
        self,
        api: ApiDefinition,
        verifier: JwtVerifier,
        invoke: Callable[[str, dict[str, Any]], Any],
        local: LocalServices,
    ) -> None:
        self.api = api
        self.verifier = verifier
        self.invoke = invoke
        self.local = local
        self.ready = threading.Event()

    # ---- the deployed API's part ---------------------------------------------------

    def handle_api(self, request: Request) -> Answer:
        found = self.api.find(request.method, request.path)
        if request.method == "OPTIONS" and self.api.cors.allow_origins:
            return self._preflight(request)
        if found is None:
            return Answer.message(HTTPStatus.NOT_FOUND, "Not Found")
        route, parameters = found
        claims: dict[str, Any] | None = None
        if route.authorized:
            try:
                claims = self.verifier.verify(
                    request.headers.get(self.verifier.authorizer.identity_header), route.scopes
                )
            except Unauthorized as exc:
                answer = Answer.message(HTTPStatus.UNAUTHORIZED, "Unauthorized")
                answer.headers["www-authenticate"] = (
                    f'Bearer scope="" error="invalid_token" error_description="{exc}"'
                )
                return answer
        event = self.event(request, route, parameters, claims)
        try:
            result = self.invoke(route.handler, event)
        except Exception:
            log.exception("the API function failed")
            return Answer.message(HTTPStatus.INTERNAL_SERVER_ERROR, "Internal Server Error")
        answer = Answer.from_lambda(result)
        answer.headers["apigw-requestid"] = event["requestContext"]["requestId"]
        origin = request.headers.get("origin")
        if self.api.cors.allows(origin):
            answer.headers["access-control-allow-origin"] = str(origin)
        return answer

    def event(
        self,
        request: Request,
        route: Route,
        parameters: dict[str, str],
        claims: dict[str, Any] | None,
    ) -> dict[str, Any]:
        """An API Gateway HTTP API payload format 2.0 event."""
        now = datetime.now(UTC)
        headers = dict(request.headers)
        cookies = [c.strip() for c in headers.pop("cookie", "").split(";") if c.strip()]
        query: dict[str, str] = {}
        for key, value in parse_qsl(request.query, keep_blank_values=True):
            query[key] = f"{query[key]},{value}" if key in query else value
        content_type = headers.get("content-type", "")
        body: str | None = None
        encoded = False
        if request.body:
            if TEXT_TYPES.match(content_type) or not content_type:
                try:
                    body = request.body.decode("utf-8")
                except UnicodeDecodeError:
                    body, encoded = base64.b64encode(request.body).decode(), True
            else:
                body, encoded = base64.b64encode(request.body).decode(), True
        context: dict[str, Any] = {
            "accountId": self.api.account_id,
            "apiId": self.api.api_id,
            "domainName": headers.get("host", "127.0.0.1"),
            "domainPrefix": headers.get("host", "127.0.0.1").split(".")[0],
            "http": {
                "method": request.method,
                "path": request.path,
                "protocol": "HTTP/1.1",
                "sourceIp": request.source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": base64.b32encode(secrets.token_bytes(10)).decode().rstrip("="),
            "routeKey": route.key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        }
        if claims is not None:
            scopes = claims.get("scope")
            context["authorizer"] = {
                "jwt": {
                    "claims": claims_as_api_gateway_passes_them(claims),
                    "scopes": scopes.split() if isinstance(scopes, str) else None,
                }
            }
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": route.key,
            "rawPath": request.path,
            "rawQueryString": request.query,
            "headers": headers,
            "requestContext": context,
            "isBase64Encoded": encoded,
        }
        if cookies:
            event["cookies"] = cookies
        if query:
            event["queryStringParameters"] = query
        if parameters:
            event["pathParameters"] = parameters
        if body is not None:
            event["body"] = body
        return event

    def _preflight(self, request: Request) -> Answer:
        cors = self.api.cors
        origin = request.headers.get("origin")
        answer = Answer(HTTPStatus.NO_CONTENT, {}, b"")
        if cors.allows(origin) and request.headers.get("access-control-request-method"):
            answer.headers.update(
                {
                    "access-control-allow-origin": str(origin),
                    "access-control-allow-methods": ",".join(cors.allow_methods),
                    "access-control-allow-headers": ",".join(cors.allow_headers).lower(),
                }
            )
            if cors.max_age is not None:
                answer.headers["access-control-max-age"] = str(cors.max_age)
        return answer

    # ---- /_local/ -------------------------------------------------------------------

    def handle_local(self, request: Request) -> Answer:
        # Local mode's own routes match the path as sent (a model id may hold "%2F").
        path, method = request.raw_path, request.method
        if path == "/_local/health" and method == "GET":
            if not self.ready.is_set():
                return Answer.json(HTTPStatus.SERVICE_UNAVAILABLE, {"status": "starting"})
            return Answer.json(HTTPStatus.OK, {"status": "ok", **self.local.info()})
        if path == "/_local/sign-in" and method == "POST":
            return self._sign_in(request)
        if path == "/_local/openapi.json" and method == "GET":
            if not self.local.openapi_path.is_file():
                return Answer.local_error(
                    HTTPStatus.NOT_FOUND,
                    "NOT_FOUND",
                    f"{self.local.openapi_path} is missing: run python scripts/export_openapi.py",
                )
            return Answer(
                HTTPStatus.OK,
                {"content-type": "application/json"},
                self.local.openapi_path.read_bytes(),
            )
        match = re.fullmatch(r"/_local/bedrock/model/([^/]+)/(converse|converse-stream)", path)
        if match and method == "POST":
            model_id, operation = unquote(match.group(1)), match.group(2)
            return (converse if operation == "converse" else converse_stream)(
                model_id, request.body
            )
        match = re.fullmatch(r"/_local/sns/([A-Za-z0-9_-]+)", path)
        if match and method == "POST":
            return self._sns(match.group(1), request.body)
        if path == "/_local/budget-notification" and method == "POST":
            return self._budget_notification(request.body)
        center = self.local.identity_center
        if center is not None and center.handles(path):
            status, headers, body = center.handle(
                method, path, request.query, request.headers, request.body
            )
            return Answer(status, headers, body)
        return Answer.message(HTTPStatus.NOT_FOUND, "Not Found")

    def _budget_notification(self, body: bytes) -> Answer:
        """AWS Budgets' alert (local_mode/budgets.py): `{"percent"?: 100}` of the budget."""
        try:
            document = json.loads(body or b"{}")
            percent = Decimal(str(document.get("percent", 100)))
            if not percent.is_finite() or percent <= 0:
                raise ValueError(percent)
        except (ValueError, AttributeError, ArithmeticError):
            return Answer.local_error(
                HTTPStatus.BAD_REQUEST, "VALIDATION_ERROR", 'send {} or {"percent": 100}'
            )
        if self.local.budget_notification is None:
            return Answer.local_error(HTTPStatus.NOT_FOUND, "NOT_FOUND", "no budget here")
        try:
            published = self.local.budget_notification(percent)
        except LookupError as exc:
            return Answer.local_error(HTTPStatus.NOT_FOUND, "NOT_FOUND", str(exc))
        return Answer.json(HTTPStatus.ACCEPTED, published)

    def _sign_in(self, request: Request) -> Answer:
        try:
            document = json.loads(request.body or b"{}")
        except ValueError:
            document = None
        email = document.get("email") if isinstance(document, dict) else None
        provider = document.get("provider") if isinstance(document, dict) else None
        if not isinstance(email, str) or not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
            return Answer.local_error(
                HTTPStatus.BAD_REQUEST,
                "VALIDATION_ERROR",
                'send {"email": "you@example.com", "provider"?: "google" | "github" | '
                '"org-<organizationId>"}',
            )
        if provider is not None and not isinstance(provider, str):
            return Answer.local_error(
                HTTPStatus.BAD_REQUEST, "VALIDATION_ERROR", "provider must be a string"
            )
        try:
            return Answer.json(HTTPStatus.OK, self.local.sign_in(email.strip(), provider))
        except SignInRefused as exc:
            return Answer.local_error(exc.status, exc.code, str(exc))

    def _sns(self, topic: str, body: bytes) -> Answer:
        try:
            message = json.loads(body)
        except ValueError:
            return Answer.message(HTTPStatus.BAD_REQUEST, "not an SNS message")
        self.local.deliver_sns(topic, message)
        return Answer(HTTPStatus.OK, {}, b"")


@dataclass(frozen=True)
class ModelAnswer:
    text: str
    stop_reason: str
    input_tokens: int
    output_tokens: int


def model_answer(model_id: str, request: dict[str, Any]) -> ModelAnswer:
    """A deterministic stand-in for a Bedrock model: moto has no Bedrock."""
    said = " ".join(
        block.get("text", "")
        for message in request.get("messages", [])
        if message.get("role") == "user"
        for block in message.get("content", [])
    ).strip()
    system = " ".join(block.get("text", "") for block in request.get("system", []) or [])
    lines = [
        "This answer comes from the local Bedrock emulator: no model was called.",
        f"Model: {model_id}",
        f"Instructions: {len(system.split())} words",
        f"You said: {said}",
    ]
    words = "\n".join(lines).split(" ")
    max_tokens = int((request.get("inferenceConfig") or {}).get("maxTokens") or 4096)
    stop = "end_turn"
    if len(words) > max_tokens:
        words, stop = words[:max_tokens], "max_tokens"
    text = " ".join(words)
    return ModelAnswer(text, stop, len(said.split()) + len(system.split()), len(text.split()))


def _request(body: bytes) -> dict[str, Any] | None:
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        return None
    return request if isinstance(request, dict) else None


def converse(model_id: str, body: bytes) -> Answer:
    """Bedrock Runtime's Converse: the whole answer in one JSON document."""
    request = _request(body)
    if request is None:
        return Answer.json(HTTPStatus.BAD_REQUEST, {"message": "body is not JSON"})
    answer = model_answer(model_id, request)
    return Answer.json(
        HTTPStatus.OK,
        {
            "output": {"message": {"role": "assistant", "content": [{"text": answer.text}]}},
            "stopReason": answer.stop_reason,
            "usage": {
                "inputTokens": answer.input_tokens,
                "outputTokens": answer.output_tokens,
                "totalTokens": answer.input_tokens + answer.output_tokens,
            },
            "metrics": {"latencyMs": 1},
        },
    )


def converse_stream(model_id: str, body: bytes) -> Answer:
    """Bedrock Runtime's ConverseStream: the same answer as events, a word at a time."""
    request = _request(body)
    if request is None:
        return Answer.json(HTTPStatus.BAD_REQUEST, {"message": "body is not JSON"})
    answer = model_answer(model_id, request)
    chunks = re.findall(r"\S+\s*|\s+", answer.text)
    return Answer(
        HTTPStatus.OK,
        {"content-type": eventstream.CONTENT_TYPE},
        eventstream.converse_stream(
            chunks,
            stop_reason=answer.stop_reason,
            input_tokens=answer.input_tokens,
            output_tokens=answer.output_tokens,
        ),
    )


@dataclass
class Request:
    method: str
    path: str  # decoded, as API Gateway routes it and hands it to the function
    raw_path: str  # as the client sent it
    query: str
    headers: dict[str, str]
    body: bytes
    source_ip: str


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    cookies: list[str] = field(default_factory=list)

    @classmethod
    def json(cls, status: int, document: Any) -> Answer:
        return cls(status, {"content-type": "application/json"}, json.dumps(document).encode())

    @classmethod
    def message(cls, status: int, message: str) -> Answer:
        """API Gateway's own answers: {"message": ...}."""
        return cls.json(status, {"message": message})

    @classmethod
    def local_error(cls, status: int, code: str, message: str) -> Answer:
        return cls.json(status, {"error": {"code": code, "message": message}})

    @classmethod
    def from_lambda(cls, result: Any) -> Answer:
        """Payload 2.0 response: a dict with statusCode, or anything else as JSON 200."""
        if not isinstance(result, dict) or "statusCode" not in result:
            return cls.json(HTTPStatus.OK, result)
        headers = {str(k).lower(): str(v) for k, v in (result.get("headers") or {}).items()}
        for name, values in (result.get("multiValueHeaders") or {}).items():
            headers[str(name).lower()] = ",".join(str(v) for v in values)
        raw = result.get("body")
        if raw is None:
            body = b""
        elif result.get("isBase64Encoded"):
            body = base64.b64decode(raw)
        else:
            body = str(raw).encode()
        headers.setdefault("content-type", "application/json")
        return cls(int(result["statusCode"]), headers, body, list(result.get("cookies") or []))


def api_definition(resolver: Any, stack: Any) -> tuple[ApiDefinition, dict[str, Any]]:
    """Routes, CORS and the JWT authorizer's configuration from the template."""
    routes: list[Route] = []
    authorizers: dict[str, dict[str, Any]] = {}
    cors = Cors()
    for logical_id, resource in stack.resources.items():
        kind = resource["Type"]
        properties = resource.get("Properties", {})
        if kind == "AWS::ApiGatewayV2::Authorizer":
            authorizers[logical_id] = resolver.resolve(stack, properties)
        elif kind == "AWS::ApiGatewayV2::Api":
            configuration = resolver.resolve(stack, properties.get("CorsConfiguration") or {})
            cors = Cors(
                allow_origins=list(configuration.get("AllowOrigins", [])),
                allow_methods=list(configuration.get("AllowMethods", [])),
                allow_headers=list(configuration.get("AllowHeaders", [])),
                max_age=configuration.get("MaxAge"),
            )
    jwt: dict[str, Any] = {}
    handlers = _integration_handlers(stack)
    for resource in stack.resources.values():
        if resource["Type"] != "AWS::ApiGatewayV2::Route":
            continue
        properties = resource["Properties"]
        handler = _route_handler(properties, handlers)
        method, path = str(properties["RouteKey"]).split(" ", 1)
        authorized = properties.get("AuthorizationType", "NONE") != "NONE"
        if authorized:
            reference = properties.get("AuthorizerId", {}).get("Ref")
            authorizer = authorizers.get(reference, {})
            if authorizer.get("AuthorizerType") != "JWT":
                raise ValueError(
                    f"route {properties['RouteKey']}: only JWT authorizers are emulated"
                )
            jwt = authorizer
        scopes = tuple(
            str(s) for s in resolver.resolve(stack, properties.get("AuthorizationScopes") or [])
        )
        routes.append(
            Route(method=method, path=path, authorized=authorized, scopes=scopes, handler=handler)
        )
    return ApiDefinition(routes=routes, cors=cors, api_id="local", account_id=""), jwt


def _integration_handlers(stack: Any) -> dict[str, str]:
    """Integration logical id -> the handler of the Lambda function it invokes."""
    found: dict[str, str] = {}
    for logical_id, resource in stack.resources.items():
        if resource["Type"] != "AWS::ApiGatewayV2::Integration":
            continue
        uri = resource.get("Properties", {}).get("IntegrationUri")
        target = uri.get("Fn::GetAtt", [None])[0] if isinstance(uri, dict) else None
        function = stack.resources.get(target or "", {})
        handler = function.get("Properties", {}).get("Handler")
        if function.get("Type") != "AWS::Lambda::Function" or not handler:
            raise ValueError(f"integration {logical_id}: only this stack's functions are emulated")
        found[logical_id] = str(handler)
    return found


def _route_handler(properties: dict[str, Any], handlers: dict[str, str]) -> str:
    """The handler of the route's `integrations/<id>` target."""
    target = properties.get("Target")
    parts = target.get("Fn::Join", [None, []])[1] if isinstance(target, dict) else []
    references = [part.get("Ref") for part in parts if isinstance(part, dict)]
    for reference in references:
        if reference in handlers:
            return handlers[reference]
    raise ValueError(f"route {properties.get('RouteKey')}: no integration this stack defines")
