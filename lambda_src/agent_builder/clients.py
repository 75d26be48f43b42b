"""The one boto3 client factory.

Clients are built on first use, never at import time, and cached per execution
environment. boto3 itself honours AWS_ENDPOINT_URL (moto, the local emulator), so there
is no endpoint switch here; the region comes from the settings (AWS_REGION).
"""

from __future__ import annotations

import functools
from typing import Any

from agent_builder.settings import get_settings


@functools.cache
def _session() -> Any:
    import boto3

    return boto3.session.Session(region_name=get_settings().region)


@functools.cache
def client(service: str) -> Any:
    """A cached client for `service` ("dynamodb", "ecs", "s3", "scheduler", "logs")."""
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "max_attempts": 3}, connect_timeout=3, read_timeout=10
    )
    return _session().client(service, config=config)


def reset() -> None:
    """Forget cached clients and the session (tests switch environments between cases)."""
    client.cache_clear()
    _session.cache_clear()
