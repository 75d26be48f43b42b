"""Real AWS region names, from botocore's own endpoint data (no network call).

Only the `aws` partition: the onboarding template, the launcher role and the role ARNs
the platform accepts (`arn:aws:iam::...`) all live there. Regions are the ones where ECS
exists, since a connection is good for nothing else. `validation.is_aws_region` asks.
"""

from __future__ import annotations

import functools

from agent_builder import clients


@functools.cache
def aws_regions() -> frozenset[str]:
    return frozenset(clients._session().get_available_regions("ecs", partition_name="aws"))
