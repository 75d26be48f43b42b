"""The GitHub OIDC bridge's HTTP API (API Gateway HTTP API, payload v2): routes ->
agent_builder.oidc_bridge.

Answers are OAuth2's: JSON errors `{"error", "error_description"}` with a 4xx (a 502/503
when GitHub fails), never a stack trace. Nothing secret is logged: no query string, no
body, no header; only the route and the outcome's error code.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from agent_builder.oidc_bridge.errors import OAuthError, invalid_request
from agent_builder.wiring import oidc_bridge_services

logger = Logger()
app = APIGatewayHttpResolver()

JSON = "application/json"
# Token and user answers must not be cached anywhere (RFC 6749 5.1).
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
MAX_FORM_BYTES = 16 * 1024


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status,
        content_type=JSON,
        body=json.dumps(body, separators=(",", ":")),
        headers=headers or {},
    )


def _redirect(location: str) -> Response:
    return Response(status_code=302, body="", headers={"Location": location, **NO_STORE})


def _query() -> dict[str, str]:
    return dict(app.current_event.query_string_parameters or {})


def _header(name: str) -> str | None:
    headers = app.current_event.headers or {}
    return next((v for k, v in headers.items() if k.lower() == name), None)


def _form() -> dict[str, str]:
    """A form-encoded body (what OAuth's token endpoint receives); 400 for anything else."""
    content_type = (_header("content-type") or "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise invalid_request("the body must be application/x-www-form-urlencoded")
    try:
        raw = app.current_event.decoded_body or ""
    except (ValueError, UnicodeDecodeError):
        raise invalid_request("the body could not be read") from None
    if len(raw) > MAX_FORM_BYTES:
        raise invalid_request("the body is too large")
    try:
        pairs = urllib.parse.parse_qsl(raw, keep_blank_values=True, strict_parsing=bool(raw))
    except ValueError:
        raise invalid_request("the body is not a valid form") from None
    form: dict[str, str] = {}
    for key, value in pairs:
        if key in form:  # RFC 6749 3.1: parameters must not repeat
            raise invalid_request(f"parameter {key} is repeated")
        form[key] = value
    return form


@app.get("/.well-known/openid-configuration")
def discovery() -> Response:
    return _json(200, oidc_bridge_services().discovery(), {"Cache-Control": "max-age=3600"})


@app.get("/jwks.json")
def jwks() -> Response:
    return _json(200, oidc_bridge_services().jwks(), {"Cache-Control": "max-age=3600"})


@app.get("/authorize")
def authorize() -> Response:
    return _redirect(oidc_bridge_services().authorize(_query()).location)


@app.get("/callback")
def callback() -> Response:
    return _redirect(oidc_bridge_services().callback(_query()).location)


@app.post("/token")
def token() -> Response:
    answer = oidc_bridge_services().token(_form(), _header("authorization"))
    return _json(200, answer, NO_STORE)


@app.get("/userinfo")
def userinfo() -> Response:
    return _json(200, oidc_bridge_services().userinfo(_header("authorization")), NO_STORE)


@app.exception_handler(OAuthError)
def oauth_error(exc: OAuthError) -> Response:
    logger.info("refused", route=app.current_event.route_key, error=exc.error, status=exc.status)
    return _json(exc.status, exc.body(), {**exc.headers, **NO_STORE})


@app.not_found
def not_found(exc: NotFoundError) -> Response:
    return _json(404, {"error": "not_found", "error_description": "no such endpoint"})


@app.exception_handler(Exception)
def unexpected(exc: Exception) -> Response:
    # A bug or an AWS failure: the type is logged (never the request), the answer is generic.
    logger.error("unexpected failure", route=app.current_event.route_key, kind=type(exc).__name__)
    return _json(500, {"error": "server_error", "error_description": "internal error"})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
