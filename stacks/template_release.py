"""The customer template's current release, in its own words."""

from __future__ import annotations

# What this template version changes, for the customers whose stacks run an older one: in
# the template's Metadata (ReleaseNotes), so each release keeps its own words in
# dist/releases/, and the platform shows them beside the changes it computes
# (agent_builder/template_changes.py). Rewrite it with every new templateVersion
# (tests/infra/test_template_releases.py holds it to cdk.json's version).
RELEASE_VERSION = "1.3.0"
RELEASE_CHANGES = (
    "Cost-allocation tags for organisations: the deployer role may tag the tasks it starts "
    "with organization, team, project, user, agent and run (besides Project, userId, agentId "
    "and runId), so that an organisation's Fargate costs can be split by team, project, "
    "member, agent and run once you activate those tags as cost-allocation tags in the "
    "Billing console. Exactly these six keys are added: a task still takes no other tag key, "
    "and task definitions are still registered with the Project tag alone.",
    "Allowed regions, enforced in your IAM: the new optional parameter AllowedRegions lists "
    "the regions the deployer role may act in; with it, the stack adds a second policy to "
    "the role whose one Deny statement refuses the role's calls in every other region, "
    "even if the platform asked. The platform already refuses "
    "an organisation's deployments outside its allowed regions; this makes the limit hold "
    "in your account too. Left empty (the default), nothing changes.",
)

__all__ = ["RELEASE_CHANGES", "RELEASE_VERSION"]
