"""Reading a request body: the one place the HTTP API turns bytes into a JSON object.

Powertools' request validation reads the body of every route that declares one (and only
those) through `_get_body`; its own reading answers 500 for a body that is not UTF-8 or
not base64, compares media types case-sensitively, and parses forms and multipart. This
API takes JSON only, so `JsonBodyValidation` replaces that reading with `json_body`:

- no body, or an empty one: no body (its content type is not looked at), so a route whose
  body is optional (POST /aws-account/onboarding) needs no content type;
- a body whose media type is not `application/json` (compared case-insensitively,
  parameters allowed; a `charset` other than UTF-8 is refused too), or that has no content
  type at all: 415 UNSUPPORTED_MEDIA_TYPE;
- a body over MAX_BODY_BYTES (UTF-8 bytes after any base64 decoding): 413
  PAYLOAD_TOO_LARGE. API Gateway refuses only bodies over 10 MB; every valid request body
  of this API fits in MAX_BODY_BYTES even with every character JSON-escaped;
- base64 that does not decode, bytes that are not UTF-8: 400 INVALID_BODY; text that is
  not JSON, JSON that is not an object: 400 VALIDATION_ERROR (the code these had before).
"""

from __future__ import annotations

import binascii
import json
from base64 import b64decode
from typing import Any

from aws_lambda_powertools.event_handler.middlewares.openapi_validation import (
    OpenAPIRequestValidationMiddleware,
)
from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent

from agent_builder.errors import DomainError, InvalidInput
from agent_builder.validation import MAX_BODY_BYTES

JSON_MEDIA_TYPE = "application/json"


class InvalidBody(DomainError):
    status = 400
    code = "INVALID_BODY"


class UnsupportedMediaType(DomainError):
    status = 415
    code = "UNSUPPORTED_MEDIA_TYPE"


class PayloadTooLarge(DomainError):
    status = 413
    code = "PAYLOAD_TOO_LARGE"


def is_json_media_type(content_type: str) -> bool:
    """`application/json`, in any case, with parameters; a charset only if it is UTF-8."""
    media_type, *parameters = content_type.split(";")
    if media_type.strip().lower() != JSON_MEDIA_TYPE:
        return False
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in (
            "utf-8",
            "utf8",
        ):
            return False
    return True


def json_body(event: BaseProxyEvent) -> dict[str, Any] | None:
    """The request's JSON object, None when it has no body; DomainErrors otherwise."""
    raw = event.body
    if not raw:
        return None
    content_type = event.headers.get("content-type")
    if content_type is None or not is_json_media_type(content_type):
        raise UnsupportedMediaType(f"the request body must be {JSON_MEDIA_TYPE}")
    if len(raw) > 2 * MAX_BODY_BYTES:
        # Already too large in any encoding; not decoded.
        raise PayloadTooLarge(f"the request body must be at most {MAX_BODY_BYTES} bytes")
    if event.is_base64_encoded:
        try:
            data = b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidBody("the request body is not valid base64") from None
    else:
        try:
            data = raw.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidBody("the request body is not UTF-8") from None
    if len(data) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"the request body must be at most {MAX_BODY_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidBody("the request body is not UTF-8") from None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        # JSONDecodeError, and integers longer than Python converts
        raise InvalidInput("the request body is not valid JSON") from None
    if not isinstance(value, dict):
        # Validation would read a one-element JSON list as its element: only objects.
        raise InvalidInput("the request body must be a JSON object")
    return value


class JsonBodyValidation(OpenAPIRequestValidationMiddleware):
    """Powertools' request validation, reading bodies with `json_body` (JSON only)."""

    def _get_body(self, app: Any) -> dict[str, Any]:
        return json_body(app.current_event)  # type: ignore[return-value]
