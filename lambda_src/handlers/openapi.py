"""The OpenAPI document of the HTTP API, generated from the routes of its two functions,
handlers/api.py and handlers/org_api.py.

Powertools writes the routes, parameters and models; `document` then says what the code
enforces beyond what pydantic can express, from the code's own sources only:
- the patterns of agent_builder/validation.py (the one place patterns live), written
  in ECMA-262 syntax;
- the configuration the deployed function gets (allowed models, the output-token cap),
  passed in as `ApiLimits` (scripts/export_openapi.py reads them from cdk.json's context);
- the regions `validation.is_aws_region` accepts (botocore's endpoint data);
- API Gateway's own answers (401, 413: `{"message": ...}`), 204s without a body, the
  opaque `nextToken`, and links from a created agent or run to where it is read.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from agent_builder.validation import (
    ACCOUNT_ID,
    AGENT_NAME_TRIMMED,
    IDEMPOTENCY_KEY,
    MAX_BODY_BYTES,
    MAX_INPUT_BYTES,
    MAX_INSTRUCTIONS_BYTES,
    REGION,
    RESOURCE_PREFIX,
    ROLE_ARN,
    SECURITY_GROUP,
    SUBNET,
)

OPENAPI_TITLE = "agent-builder control-plane API"
OPENAPI_VERSION = "1.0.0"

GATEWAY_MESSAGE = {
    "title": "GatewayMessage",
    "description": "What API Gateway itself answers, before any function runs",
    "type": "object",
    "properties": {"message": {"type": "string"}},
    "required": ["message"],
}
# Status -> API Gateway's own message for it (the function may answer these too, with the
# common error body).
GATEWAY_ANSWERS = {"401": "Unauthorized", "413": "Request Entity Too Large"}
OPAQUE_PAGING = (
    "opaque: pass back exactly what the previous page gave; it is not to be parsed or built"
)
UTF8 = "maxLength counts characters; the limit is UTF-8 bytes and is checked too"


@dataclass(frozen=True)
class ApiLimits:
    """The deployed function's configuration that the document states."""

    allowed_models: tuple[str, ...]
    max_output_tokens: int


def ecma(pattern: re.Pattern[str] | str) -> str:
    """A Python pattern of validation.py as a JSON Schema (ECMA-262) pattern that Python
    tools read the same way: named groups become non-capturing ones, the rest of the
    syntax there is shared."""
    text = pattern.pattern if isinstance(pattern, re.Pattern) else pattern
    return re.sub(r"\(\?P<[A-Za-z_][A-Za-z0-9_]*>", "(?:", text)


def _string(schema: dict[str, Any]) -> dict[str, Any]:
    """The string branch of an optional property (anyOf [string, null]), or itself."""
    for branch in schema.get("anyOf", ()):
        if branch.get("type") in ("string", "integer", "array"):
            return branch  # edited in place
    return schema


def _constrain(doc: dict[str, Any], limits: ApiLimits) -> None:
    from agent_builder.regions import aws_regions

    schemas = doc["components"]["schemas"]
    regions = sorted(aws_regions())

    def prop(model: str, name: str) -> dict[str, Any]:
        return _string(schemas[model]["properties"][name])

    prop("CreateAgent", "name")["pattern"] = ecma(AGENT_NAME_TRIMMED)
    prop("CreateAgent", "model")["enum"] = list(limits.allowed_models)
    instructions = prop("CreateAgent", "instructions")
    instructions["pattern"] = r"\S"
    instructions["description"] = (
        f"system prompt, not blank, at most {MAX_INSTRUCTIONS_BYTES} bytes of UTF-8 ({UTF8})"
    )
    prop("AgentParameters", "maxTokens")["maximum"] = limits.max_output_tokens
    schemas["AgentParameters"]["properties"]["maxTokens"]["description"] = (
        f"1 to {limits.max_output_tokens} (the platform's maxOutputTokens)"
    )
    for model in ("TestRequest", "DeploymentRequest"):
        text = prop(model, "input")
        text["pattern"] = r"\S"
        schemas[model]["properties"]["input"]["description"] = (
            f"not blank, at most {MAX_INPUT_BYTES} bytes of UTF-8 ({UTF8})"
        )
    for model in ("OnboardingRequest", "ConnectAccount"):
        region = prop(model, "region")
        region["pattern"] = ecma(REGION)
        region["enum"] = regions
    prop("ConnectAccount", "roleArn")["pattern"] = ecma(ROLE_ARN)
    prop("ConnectAccount", "resourcePrefix")["pattern"] = ecma(RESOURCE_PREFIX)
    prop("ConnectAccount", "securityGroupId")["pattern"] = ecma(SECURITY_GROUP)
    prop("ConnectAccount", "subnetIds")["items"]["pattern"] = ecma(SUBNET)
    for model in ("Run", "AwsAccount"):
        prop(model, "accountId")["pattern"] = ecma(ACCOUNT_ID)
    prop("AwsAccount", "roleArn")["pattern"] = ecma(ROLE_ARN)
    for schema in schemas.values():
        if "nextToken" in schema.get("properties", {}):
            schema["properties"]["nextToken"]["description"] = (
                OPAQUE_PAGING + "; null when there is no next page"
                if "description" not in schema["properties"]["nextToken"]
                else OPAQUE_PAGING + "; " + schema["properties"]["nextToken"]["description"]
            )


def _parameters(operation: dict[str, Any]) -> None:
    for parameter in operation.get("parameters", ()):
        if parameter["name"] == "nextToken":
            # A query parameter is a string or absent; "null" is not a JSON null here.
            parameter["schema"] = {"type": "string", "maxLength": 2048}
            parameter["description"] = OPAQUE_PAGING
        elif parameter["name"] == "idempotency-key":
            parameter["schema"] = {"type": "string", "pattern": ecma(IDEMPOTENCY_KEY)}
            parameter["description"] += "; 1-128 of letters, digits, '.', '_', ':', '-'"


def _request_body(operation: dict[str, Any]) -> None:
    """An optional body is absent or an object: JSON null is refused like any non-object
    (Powertools writes `Model | None` as anyOf [model, null])."""
    body = operation.get("requestBody")
    if body is None:
        return
    media = body["content"]["application/json"]
    branches = media["schema"].get("anyOf")
    if branches and {"type": "null"} in branches:
        (media["schema"],) = [branch for branch in branches if branch != {"type": "null"}]


def _responses(operation: dict[str, Any]) -> None:
    responses = operation.get("responses", {})
    # Only Powertools' own 422; a route's documented 422 (ROLE_VALIDATION_FAILED) uses
    # the common error body and stays.
    if "HTTPValidationError" in json.dumps(responses.get("422", {})):
        responses.pop("422")
    for code, response in responses.items():
        if code == "204":
            response.pop("content", None)
            response["description"] = "No Content: the answer has no body"
        elif code in GATEWAY_ANSWERS:
            response["content"]["application/json"]["schema"] = {
                "anyOf": [
                    {"$ref": "#/components/schemas/ErrorBody"},
                    {"$ref": "#/components/schemas/GatewayMessage"},
                ]
            }
            response["content"]["application/json"]["example"] = {"message": GATEWAY_ANSWERS[code]}
    if "413" in responses:
        responses["413"]["description"] = (
            f"PAYLOAD_TOO_LARGE: the body is over {MAX_BODY_BYTES} bytes (UTF-8, after any "
            'base64 decoding); over 10 MB, API Gateway\'s own {"message": "Request Entity '
            'Too Large"}'
        )


# Where what a route creates is read: (path, method, status) -> links.
_AGENT = {"agentId": "$response.body#/agentId"}
_RUN = {"runId": "$response.body#/runId"}
LINKS: dict[tuple[str, str, str], dict[str, tuple[str, str, dict[str, str]]]] = {
    ("/agents", "post", "201"): {
        "GetAgent": ("/agents/{agentId}", "get", _AGENT),
        "TestAgent": ("/agents/{agentId}/tests", "post", _AGENT),
        "DeployAgent": ("/agents/{agentId}/deployments", "post", _AGENT),
        "DeleteAgent": ("/agents/{agentId}", "delete", _AGENT),
    },
    ("/agents/{agentId}/tests", "post", "202"): {
        "GetRun": ("/runs/{runId}", "get", _RUN),
        "GetRunLogs": ("/runs/{runId}/logs", "get", _RUN),
    },
    ("/agents/{agentId}/deployments", "post", "202"): {
        "GetRun": ("/runs/{runId}", "get", _RUN),
        "GetRunLogs": ("/runs/{runId}/logs", "get", _RUN),
    },
}


def _links(doc: dict[str, Any]) -> None:
    paths = doc["paths"]
    for (path, method, status), links in LINKS.items():
        response = paths[path][method]["responses"][status]
        response["links"] = {
            name: {
                "operationId": paths[target][target_method]["operationId"],
                "parameters": parameters,
            }
            for name, (target, target_method, parameters) in links.items()
        }


def _generated(app: Any) -> dict[str, Any]:
    """Powertools' document of one function's routes."""
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

    generated: dict[str, Any] = json.loads(
        app.get_openapi_json_schema(
            title=OPENAPI_TITLE,
            version=OPENAPI_VERSION,
            description="Register agents, test them on the platform within a monthly quota, "
            'follow their runs and read their logs. Errors: {"error": {"code", "message"}}; '
            'API Gateway\'s own answers (401, and 413 over 10 MB) are {"message"}. Request '
            f"bodies are application/json (any case, charset UTF-8 only: else 415), at most "
            f"{MAX_BODY_BYTES} bytes (else 413); size limits of fields are UTF-8 bytes.",
            security_schemes={
                "cognitoJwt": HTTPBearer(
                    bearerFormat="JWT",
                    description="A Cognito access token of the web client carrying the scope "
                    "`<prefix>-api/api` (by default `agent-builder-api/api`); ID tokens "
                    "carry no scope and get API Gateway's 401",
                )
            },
            security=[{"cognitoJwt": []}],
        )
    )
    return generated


def _merged(documents: list[dict[str, Any]]) -> dict[str, Any]:
    """One document of the API out of each function's: every path belongs to one function,
    and a model both use (ErrorBody, AuditPage) must be the same in both."""
    merged = documents[0]
    paths = merged.setdefault("paths", {})
    schemas = merged.setdefault("components", {}).setdefault("schemas", {})
    for other in documents[1:]:
        for path, operations in other.get("paths", {}).items():
            if path in paths:
                raise ValueError(f"{path} is served by two functions")
            paths[path] = operations
        for name, schema in other.get("components", {}).get("schemas", {}).items():
            if schemas.setdefault(name, schema) != schema:
                raise ValueError(f"the functions' documents disagree on the model {name}")
    merged["paths"] = dict(sorted(paths.items()))
    return merged


def document(limits: ApiLimits) -> dict[str, Any]:
    """The document, as served by local mode and written to dist/openapi.json.

    Powertools documents request-validation failures as 422; this API answers them 400
    with the common error body (already listed on every route), so those 422 entries and
    their schemas are dropped (the routes' own 422, a failed account validation, stay).
    Every route needs the Cognito JWT.
    """
    from handlers import api, org_api

    doc = _merged([_generated(module.app) for module in (api, org_api)])
    for operations in doc.get("paths", {}).values():
        for operation in operations.values():
            _parameters(operation)
            _request_body(operation)
            _responses(operation)
    schemas = doc.get("components", {}).get("schemas", {})
    unused = ("HTTPValidationError", "ValidationError", "ResponseValidationError")
    for name in unused:
        schemas.pop(name, None)
    schemas["GatewayMessage"] = GATEWAY_MESSAGE
    _constrain(doc, limits)
    _links(doc)
    text = json.dumps(doc)
    for name in unused:
        if f'"#/components/schemas/{name}"' in text:
            raise ValueError(f"the document still refers to {name}")
    return doc


def render(limits: ApiLimits) -> str:
    """Deterministic text: sorted keys, fixed indentation, trailing newline."""
    return json.dumps(document(limits), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
