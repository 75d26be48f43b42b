"""The shapes the platform accepts, written once: ids, names, ARNs, size limits.

Used by the request models (handlers/schemas.py), the services (the authority) and the
settings. Only `re` at import time: the API handler imports this on a cold start.
"""

from __future__ import annotations

import re
import uuid

# ---- sizes --------------------------------------------------------------------------------

MAX_INPUT_BYTES = 8 * 1024
# "Not blank", said the same way by the OpenAPI document (an unanchored JSON Schema
# pattern), pydantic and the domain code: at least one character that is not ASCII
# whitespace. (str.strip() and regex \s disagree across engines on characters such as
# U+001E, which Python calls whitespace and ECMA-262 does not.)
ASCII_WHITESPACE = " \t\n\r\f\v"
NOT_BLANK = r"[^ \t\n\r\f\v]"
MAX_INSTRUCTIONS_BYTES = 16 * 1024
MAX_AGENT_NAME = 64
MAX_IDEMPOTENCY_KEY = 128
# Path parameters: every id the platform issues is a UUID (36 characters).
MAX_PATH_ID = 64
# A request body, in UTF-8 bytes after any base64 decoding (handlers/body.py): every valid
# body fits with every character JSON-escaped (\u00XX: 6 bytes for 16 KiB of instructions).
MAX_BODY_BYTES = 128 * 1024

# ---- what the platform issues -------------------------------------------------------------

AGENT_NAME = r"^[A-Za-z0-9 _-]+$"
# AGENT_NAME without a leading or trailing space: what the agents service accepts.
AGENT_NAME_TRIMMED = r"^[A-Za-z0-9_-](?:[A-Za-z0-9 _-]*[A-Za-z0-9_-])?$"
# A cost-allocation tag value the platform sets from an agent's `team` / `project`: what
# ECS and Cost Explorer accept, 1-64 characters, no space at either end.
COST_TAG_VALUE = re.compile(
    r"^[A-Za-z0-9_.:/=+@-](?:[A-Za-z0-9 _.:/=+@-]{0,62}[A-Za-z0-9_.:/=+@-])?$"
)
IDEMPOTENCY_KEY = re.compile(rf"^[A-Za-z0-9._:-]{{1,{MAX_IDEMPOTENCY_KEY}}}$")


def valid_id(value: str) -> bool:
    """Ids this platform issues are UUIDs; anything else cannot exist (and is not looked up)."""
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


# ---- AWS ----------------------------------------------------------------------------------

ACCOUNT_ID = re.compile(r"^[0-9]{12}$")
ROLE_ARN = re.compile(r"^arn:aws:iam::(?P<account>[0-9]{12}):role/(?P<name>[\w+=,.@-]{1,64})$")
STACK_ARN = re.compile(
    r"^arn:aws:cloudformation:(?P<region>[a-z0-9-]+):(?P<account>[0-9]{12}):stack/"
)
# What STS accepts as an External ID (and what the onboarding template's parameter allows).
MAX_EXTERNAL_ID = 1224
EXTERNAL_ID = re.compile(rf"^[\w+=,.@:/-]{{2,{MAX_EXTERNAL_ID}}}$")
# STS SourceIdentity and RoleSessionName: 2-64 of [\w+=,.@-].
STS_NAME = re.compile(r"^[\w+=,.@-]{2,64}$")
# The onboarding stack's ResourcePrefix parameter.
MAX_RESOURCE_PREFIX = 20
RESOURCE_PREFIX = re.compile(rf"^[a-z][a-z0-9-]{{0,{MAX_RESOURCE_PREFIX - 1}}}$")
SUBNET = re.compile(r"^subnet-[0-9a-f]{8,17}$")
MAX_SUBNETS = 16
SECURITY_GROUP = re.compile(r"^sg-[0-9a-f]{8,17}$")
MAX_REGION = 32
# What an AWS region name looks like (us-east-1, ap-southeast-5, us-gov-west-1); which
# ones are accepted is is_aws_region's answer.
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$")
ARCHITECTURES = ("ARM64", "X86_64")
TEMPLATE_VERSION = re.compile(r"[0-9]+(\.[0-9]+){0,3}")


def parse_version(value: object) -> tuple[int, ...] | None:
    """MAJOR.MINOR.PATCH (up to four parts) as numbers; None if it is not one."""
    if not isinstance(value, str) or not TEMPLATE_VERSION.fullmatch(value):
        return None
    return tuple(int(part) for part in value.split("."))


def is_aws_region(name: object) -> bool:
    """A region of the `aws` partition where ECS exists (botocore's endpoint data)."""
    from agent_builder.regions import aws_regions

    return isinstance(name, str) and name in aws_regions()


def is_blank(text: str) -> bool:
    """Nothing but ASCII whitespace (NOT_BLANK's complement)."""
    return not text.strip(ASCII_WHITESPACE)
