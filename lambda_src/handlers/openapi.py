"""The OpenAPI document of the HTTP API, generated from the routes in handlers/api.py."""

from __future__ import annotations

import json
from typing import Any

OPENAPI_TITLE = "agent-builder control-plane API"
OPENAPI_VERSION = "1.0.0"


def document() -> dict[str, Any]:
    """The document, as served by local mode and written to dist/openapi.json.

    Powertools documents request-validation failures as 422; this API answers them 400
    with the common error body (already listed on every route), so those 422 entries and
    their schemas are dropped (the routes' own 422, a failed account validation, stay). Every route needs the Cognito JWT.
    """
    from aws_lambda_powertools.event_handler.openapi.models import (
        HTTPBearer,
    )

    from handlers.api import app

    doc: dict[str, Any] = json.loads(
        app.get_openapi_json_schema(
            title=OPENAPI_TITLE,
            version=OPENAPI_VERSION,
            description="Register agents, test them on the platform within a monthly quota, "
            'follow their runs and read their logs. Errors: {"error": {"code", "message"}}.',
            security_schemes={"cognitoJwt": HTTPBearer(bearerFormat="JWT")},
            security=[{"cognitoJwt": []}],
        )
    )
    for operations in doc.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            # Only Powertools' own 422; a route's documented 422 (ROLE_VALIDATION_FAILED)
            # uses the common error body and stays.
            if "HTTPValidationError" in json.dumps(responses.get("422", {})):
                responses.pop("422")
    schemas = doc.get("components", {}).get("schemas", {})
    unused = ("HTTPValidationError", "ValidationError", "ResponseValidationError")
    for name in unused:
        schemas.pop(name, None)
    text = json.dumps(doc)
    for name in unused:
        if f'"#/components/schemas/{name}"' in text:
            raise ValueError(f"the document still refers to {name}")
    return doc


def render() -> str:
    """Deterministic text: sorted keys, fixed indentation, trailing newline."""
    return json.dumps(document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
