"""The one boto3 client factory.

Clients are built on first use, never at import time, and cached per execution
environment. boto3 itself honours AWS_ENDPOINT_URL (moto, the local emulator), so there
is no endpoint switch here; the region is the function's (AWS_REGION).

Clients that act in a customer's account (temporary credentials from the launcher
role chain) come from the same session, so they share its loaded models and hooks, but
are not cached: their credentials belong to one user's request.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any


@functools.cache
def _session() -> Any:
    import boto3

    from agent_builder.settings import aws_region

    return boto3.session.Session(region_name=aws_region())


@functools.cache
def _config() -> Any:
    from botocore.config import Config

    return Config(
        retries={"mode": "standard", "max_attempts": 3}, connect_timeout=3, read_timeout=10
    )


@functools.cache
def client(service: str) -> Any:
    """A cached client for `service` ("dynamodb", "ecs", "s3", "scheduler", "logs")."""
    return _session().client(service, config=_config())


@functools.cache
def client_in(service: str, region: str) -> Any:
    """A cached client for `service` in another region (IAM Identity Center's SSO region)."""
    return _session().client(service, region_name=region, config=_config())


def client_with(service: str, *, region: str | None, credentials: Mapping[str, Any]) -> Any:
    """A client acting with temporary credentials (an STS `Credentials` structure)."""
    from agent_builder.settings import aws_region

    return _session().client(
        service,
        region_name=region or aws_region(),
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        config=_config(),
    )


def reset() -> None:
    """Forget cached clients and the session (tests switch environments between cases)."""
    client.cache_clear()
    client_in.cache_clear()
    _session.cache_clear()
    _config.cache_clear()
