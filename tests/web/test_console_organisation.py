"""The console's organisation screens, in Chromium against local mode: an admin founds an
organisation, creates its agent and invites a viewer by e-mail; the viewer signs in,
accepts the invitation by its id and sees the agent with no launch button."""

from __future__ import annotations

from typing import Any

import pytest

from local_mode.harness import LocalMode
from tests.web.conftest import SCREENSHOTS, Traffic, sign_in
from tests.web.test_console_journeys import create_agent

pytestmark = pytest.mark.web

ADMIN = "org-admin@example.com"
VIEWER = "org-viewer@example.com"


def test_admin_invites_a_viewer_who_sees_the_agent_without_launch_buttons(
    page: Any, local_mode: LocalMode, traffic: Traffic
) -> None:
    sign_in(page, ADMIN)
    page.get_by_role("link", name="Organisation").click()
    page.get_by_label("Organisation name").fill("Acme Research")
    page.get_by_role("button", name="Create organisation").click()
    page.get_by_role("heading", name="Acme Research").wait_for()
    facts = page.get_by_role("region", name="Organisation").inner_text()
    assert "admin" in facts and "every region" in facts, facts

    page.get_by_label("E-mail address").fill(VIEWER)
    page.get_by_label("Role", exact=True).select_option("viewer")
    page.get_by_role("button", name="Invite", exact=True).click()
    invitations = page.get_by_role("region", name="Invitations")
    invitations.get_by_role("cell", name=VIEWER, exact=True).wait_for()
    invitation_id = invitations.locator("code").first.inner_text()
    assert invitation_id
    # The audit trail (admins only) records what the admin just did.
    audit = page.get_by_role("region", name="Audit trail")
    audit.get_by_role("cell", name="org.create", exact=True).wait_for()
    # One page of events: no "Older events" to click.
    assert not page.get_by_role("button", name="Older events").is_visible()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "organisation-admin.png"), full_page=True)
    page.set_viewport_size({"width": 375, "height": 740})
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 375, f"the organisation screen scrolls sideways on a phone: {width}px"
    page.screenshot(path=str(SCREENSHOTS / "organisation-phone.png"), full_page=True)
    page.set_viewport_size({"width": 1100, "height": 900})

    page.get_by_role("link", name="Agents").click()
    create_agent(page, "org-greeter")
    assert page.get_by_role("button", name="Test", exact=True).is_visible()

    page.get_by_role("button", name="Sign out").click()
    sign_in(page, VIEWER)
    page.get_by_role("link", name="Organisation").click()
    # A wrong id is refused with the API's message, and nothing changes.
    page.get_by_label("Invitation id").fill("no-such-invitation")
    page.get_by_role("button", name="Accept invitation").click()
    page.get_by_role("status").filter(has_text="HTTP 404").wait_for()
    page.get_by_label("Invitation id").fill(invitation_id)
    page.get_by_role("button", name="Accept invitation").click()
    page.get_by_role("heading", name="Acme Research").wait_for()
    facts = page.get_by_role("region", name="Organisation").inner_text()
    assert "viewer" in facts, facts
    # What a viewer cannot do is not offered: no invitations, audit, role changes, edits.
    assert page.get_by_role("region", name="Invitations").count() == 0
    assert page.get_by_role("region", name="Audit trail").count() == 0
    assert page.get_by_role("button", name="Change role").count() == 0
    assert page.get_by_text("Edit the organisation").count() == 0
    assert page.get_by_role("button", name="Leave the organisation").is_visible()

    page.get_by_role("link", name="Agents").click()
    page.get_by_role("heading", name="Agents").wait_for()
    assert page.get_by_role("button", name="Create agent").count() == 0
    assert page.get_by_role("button", name="Delete org-greeter").count() == 0
    page.get_by_role("link", name="org-greeter").click()
    page.get_by_role("heading", name="org-greeter").wait_for()
    page.get_by_text("As a viewer you cannot test or deploy agents.").wait_for()
    for name in (
        "Test",
        "Deploy",
        "Deploy to my AWS account",
        "Deploy to the organisation's AWS account",
    ):
        assert page.get_by_role("button", name=name, exact=True).count() == 0, name
    assert page.get_by_role("button", name="Delete org-greeter").count() == 0
    accepted = [c for c in traffic.api_calls if c[1].endswith("/accept")]
    assert [c[1] for c in accepted][-1] == f"/org/invitations/{invitation_id}/accept"


def test_who_may_delete_or_launch_follows_the_role(page: Any) -> None:
    """Developers delete only the agents they created; viewers launch and create nothing."""
    decided = page.evaluate(
        """async () => {
          const { permissions } = await import('/js/org.js');
          const own = {createdBy: 'u1'}, other = {createdBy: 'u2'};
          const as = (role, org = 'o1') => ({userId: 'u1', organizationId: org, role});
          return {
            admin: [permissions(as('admin'), other).remove, permissions(as('admin')).launch],
            devOwn: permissions(as('developer'), own).remove,
            devOther: permissions(as('developer'), other).remove,
            devLaunch: permissions(as('developer')).launch,
            viewer: [permissions(as('viewer'), own).remove, permissions(as('viewer')).launch,
                     permissions(as('viewer')).create],
            alone: [permissions(as(null, null), {}).remove, permissions(as(null, null)).launch],
          };
        }"""
    )
    assert decided == {
        "admin": [True, True],
        "devOwn": True,
        "devOther": False,
        "devLaunch": True,
        "viewer": [False, False, False],
        "alone": [True, True],
    }
