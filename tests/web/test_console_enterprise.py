"""Tier 3 set-up in the console, in Chromium against local mode with IAM Identity Center
sessions on (enterpriseSso=true): an admin sets up SSO with a pasted metadata document
(refusals shown in words) and removes it; a developer starts an IAM Identity Center session
and confirms it on local mode's approval page; a viewer is offered nothing to start; an admin
gets the organisation's Launch Stack link, sees the empty accounts table, an account's stack
connect it (local_mode.customer) and disconnects it; an organisation's Deploy sends only the
account and region chosen."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local_mode.harness import LocalMode
from tests.e2e.conftest import TESTS_PER_MONTH, running_local_mode
from tests.runtime.sso_support import START_URL, metadata_xml
from tests.web.conftest import SCREENSHOTS, Traffic, sign_in
from tests.web.test_console_journeys import create_agent

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.web

SSO_ACCOUNT = "222233334444"
ORG_ACCOUNT = "333344445555"  # an emulated account the organisation's StackSet reaches
ADMIN = "admin@sso-admin.example"


@pytest.fixture(scope="module")
def local_mode(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMode]:
    """Local mode with the SSO token key, so that device flows can be stored."""
    yield from running_local_mode(
        tmp_path_factory,
        "enterpriseSso=true",
        f"freeTestsPerMonth={TESTS_PER_MONTH}",
        "launchesPerMinute=100",
    )


def sso_settings(domain: str, **changes: Any) -> dict[str, Any]:
    return {
        "samlMetadataXml": metadata_xml(),
        "emailDomains": [domain],
        "startUrl": START_URL,
        "ssoRegion": "eu-west-1",
        "accountId": SSO_ACCOUNT,
        "permissionSetRole": "AgentBuilderDeployer",
        **changes,
    }


def organisation(
    local_mode: LocalMode, admin: str, name: str, members: dict[str, str], sso_domain: str | None
) -> str:
    """An organisation made through the API (admin founds, members accept), its id."""
    token = local_mode.sign_in(admin)
    created = local_mode.request("POST", "/org", token=token, body={"name": name})
    assert created.status == 201, created.body
    for email, role in members.items():
        invited = local_mode.request(
            "POST", "/org/invitations", token=token, body={"email": email, "role": role}
        )
        assert invited.status == 201, invited.body
        accepted = local_mode.request(
            "POST",
            f"/org/invitations/{invited.body['invitationId']}/accept",
            token=local_mode.sign_in(email),
        )
        assert accepted.status == 200, accepted.body
    if sso_domain:
        configured = local_mode.request(
            "PUT", "/org/sso", token=token, body=sso_settings(sso_domain)
        )
        assert configured.status == 200, configured.body
    return str(created.body["organizationId"])


def fits_a_phone(page: Any, screenshot: str, *reachable: Any) -> None:
    """At 375 px wide nothing scrolls sideways and the actions can be reached; back after."""
    page.set_viewport_size({"width": 375, "height": 740})
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 375, f"{screenshot} scrolls sideways on a phone: {width}px"
    for element in reachable:
        element.scroll_into_view_if_needed()
        assert element.is_visible()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{screenshot}.png"), full_page=True)
    page.set_viewport_size({"width": 1100, "height": 900})


def fill_sso_form(page: Any, *, domain: str, document: str) -> None:
    form = page.get_by_role("form", name="SSO settings")
    form.get_by_role("radio", name="A pasted document").check()
    assert not form.get_by_label("Metadata URL").is_visible()
    form.get_by_label("Metadata document").fill(document)
    form.get_by_label("E-mail domains").fill(f" {domain} ,")
    form.get_by_label("AWS access portal URL").fill(START_URL)
    form.get_by_label("IAM Identity Center region").fill("eu-west-1")
    form.get_by_label("AWS account id").fill(SSO_ACCOUNT)
    form.get_by_label("Permission set name").fill("AgentBuilderDeployer")
    form.get_by_role("button", name="Set up SSO").click()


def test_admin_sets_up_sso_from_a_pasted_document_sees_refusals_in_words_and_removes_it(
    page: Any, local_mode: LocalMode, traffic: Traffic
) -> None:
    # Another organisation already holds taken.example.
    organisation(local_mode, "other-admin@taken.example", "Taken", {}, "taken.example")
    sign_in(page, ADMIN)
    page.get_by_role("link", name="Organisation").click()
    page.get_by_label("Organisation name").fill("Single Sign-On Ltd")
    page.get_by_role("button", name="Create organisation").click()
    section = page.get_by_role("region", name="SSO sign-in")
    section.get_by_text("Not set up").wait_for()
    status = page.get_by_role("form", name="SSO settings").get_by_role("status")

    fill_sso_form(page, domain="taken.example", document=metadata_xml())
    status.filter(has_text="EMAIL_DOMAIN_TAKEN, HTTP 409").wait_for()
    assert "taken.example is already claimed by another organisation" in status.inner_text()
    fill_sso_form(page, domain="sso-admin.example", document="<not-metadata/>")
    status.filter(has_text="INVALID_SSO_CONFIG, HTTP 422").wait_for()
    assert "is not SAML 2.0 metadata" in status.inner_text()

    fill_sso_form(page, domain="sso-admin.example", document=metadata_xml())
    section.get_by_role("button", name="Remove SSO").wait_for()
    shown = section.inner_text()
    org = local_mode.request("GET", "/org", token=local_mode.sign_in(ADMIN)).body
    assert f"org-{org['organizationId']}" in shown and "sso-admin.example" in shown, shown
    assert "https://portal.sso.us-east-1.amazonaws.com/saml/assertion/" in shown, shown
    assert "a pasted document" in shown and "AgentBuilderDeployer" in shown, shown
    # The form is gone for a configured organisation: changes are behind a disclosure.
    assert not page.get_by_role("form", name="SSO settings").is_visible()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "enterprise-sso-admin.png"), full_page=True)
    fits_a_phone(page, "enterprise-sso-phone", section.get_by_role("button", name="Remove SSO"))

    page.once("dialog", lambda dialog: dialog.accept())
    section.get_by_role("button", name="Remove SSO").click()
    page.get_by_role("region", name="SSO sign-in").get_by_text("Not set up").wait_for()

    puts = [
        body for method, path, body in traffic.api_calls if (method, path) == ("PUT", "/org/sso")
    ]
    assert len(puts) == 3
    assert all("samlMetadataXml" in body and "samlMetadataUrl" not in body for body in puts)
    assert puts[-1]["emailDomains"] == ["sso-admin.example"]
    assert ("DELETE", "/org/sso", None) in traffic.api_calls


def test_developer_starts_an_aws_session_confirms_it_in_identity_center_and_ends_it(
    page: Any, local_mode: LocalMode, traffic: Traffic
) -> None:
    developer = "dev@session.example"
    organisation(
        local_mode, "admin@session.example", "Sessions", {developer: "developer"}, "session.example"
    )
    sign_in(page, developer)
    page.get_by_role("link", name="Organisation").click()
    section = page.get_by_role("region", name="AWS session")
    section.get_by_role("status").filter(has_text="none").wait_for()
    section.get_by_role("button", name="Start AWS session").click()

    link = section.get_by_role("link", name="Confirm the code in IAM Identity Center")
    link.wait_for()
    assert link.get_attribute("target") == "_blank"
    assert "noopener" in (link.get_attribute("rel") or "").split()
    code = section.locator("strong.code").inner_text()
    assert link.get_attribute("href") == (f"{local_mode.url}/_local/sso/approve?user_code={code}")
    assert "pending" in section.get_by_role("status").inner_text()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "enterprise-session-pending.png"), full_page=True)
    fits_a_phone(page, "enterprise-session-phone", link)

    # IAM Identity Center's page (local mode's stand-in) opens in a new tab: the member
    # checks the code and allows; the console notices by itself.
    with page.context.expect_page() as opened:
        link.click()
    approval = opened.value
    approval.get_by_text(code).wait_for()
    approval.get_by_role("button", name="Approve").click()
    approval.get_by_text("Request approved").wait_for()
    approval.close()

    section.get_by_role("status").filter(has_text="active").wait_for(timeout=30_000)
    assert "until" in section.get_by_role("status").inner_text()
    page.screenshot(path=str(SCREENSHOTS / "enterprise-session-active.png"), full_page=True)
    section.get_by_role("button", name="End session").click()
    section.get_by_role("status").filter(has_text="none").wait_for()
    assert section.get_by_role("button", name="Start AWS session").is_visible()

    calls = [(method, path) for method, path, _ in traffic.api_calls]
    assert calls.count(("POST", "/org/sso/device-authorization")) == 1
    assert ("DELETE", "/org/sso/session") in calls
    # While pending the console polls, but every few seconds, not in a tight loop.
    assert 1 <= calls.count(("GET", "/org/sso/session")) <= 15


def test_viewer_is_offered_no_aws_session_to_start(page: Any, local_mode: LocalMode) -> None:
    viewer = "viewer@watch.example"
    organisation(local_mode, "admin@watch.example", "Watchers", {viewer: "viewer"}, "watch.example")
    sign_in(page, viewer)
    page.get_by_role("link", name="Organisation").click()
    section = page.get_by_role("region", name="AWS session")
    section.get_by_text("Viewers deploy nothing").wait_for()
    assert page.get_by_role("button", name="Start AWS session").count() == 0
    # The SSO settings and the accounts are shown, read-only.
    sso = page.get_by_role("region", name="SSO sign-in")
    assert "watch.example" in sso.inner_text()
    assert sso.get_by_role("button").count() == 0
    assert page.get_by_role("form", name="SSO settings").count() == 0
    accounts = page.get_by_role("region", name="AWS accounts")
    accounts.get_by_role("cell", name="No AWS accounts connected yet.").wait_for()
    assert accounts.get_by_role("button").count() == 0


def test_admin_gets_the_launch_stack_link_sees_connected_accounts_and_disconnects_one(
    page: Any, local_mode: LocalMode, traffic: Traffic
) -> None:
    sign_in(page, "admin@accounts.example")
    page.get_by_role("link", name="Organisation").click()
    page.get_by_label("Organisation name").fill("Many Accounts")
    page.get_by_role("button", name="Create organisation").click()
    accounts = page.get_by_role("region", name="AWS accounts")
    table = accounts.get_by_role("table", name="Connected AWS accounts")
    table.get_by_role("cell", name="No AWS accounts connected yet.").wait_for()
    headers = table.get_by_role("columnheader").all_inner_texts()
    assert headers == ["Account", "Region", "Template", "Connected", "Actions"], headers

    accounts.get_by_role("button", name="Connect AWS accounts").click()
    launch = accounts.get_by_role("link", name="Launch Stack")
    launch.wait_for()
    href = launch.get_attribute("href") or ""
    assert href.startswith("https://") and "/cloudformation/home" in href, href
    assert "#/stacks/quickcreate?" in href and "organization-" in href, href
    assert launch.get_attribute("target") == "_blank"
    assert "noopener" in (launch.get_attribute("rel") or "").split()
    card = accounts.get_by_role("region", name="Launch Stack for the organisation")
    shown = card.inner_text()
    external_id = card.locator("code").first.inner_text()
    assert f"param_ExternalId={external_id}" in href
    assert "not a secret" in shown
    onboarding = [b for m, p, b in traffic.api_calls if p == "/org/accounts/onboarding"]
    assert onboarding == [{}]
    assert "StackSet template" in shown and ".yaml" in shown, shown

    fits_a_phone(page, "enterprise-accounts-phone", launch)

    # What the StackSet does in each account of the OUs: that account's stack registers it.
    from local_mode.customer import launch_customer_stack

    launch_customer_stack(api_url=local_mode.url, account_id=ORG_ACCOUNT, launch_stack_url=href)
    card.get_by_role("button", name="Refresh the accounts").click()
    row = page.get_by_role("row").filter(has_text=ORG_ACCOUNT)
    row.wait_for()
    cells = row.get_by_role("cell").all_inner_texts()
    # The version its stack reports: the exported template's, cdk.json's templateVersion.
    version = json.loads((ROOT / "cdk.json").read_text())["context"]["templateVersion"]
    assert cells[:3] == [ORG_ACCOUNT, "us-east-1", version], cells
    page.screenshot(path=str(SCREENSHOTS / "enterprise-accounts.png"), full_page=True)

    # The only account is the deploy's default, and is sent as chosen.
    page.get_by_role("link", name="Agents").click()
    create_agent(page, "org-account-deployer")
    account = page.get_by_role("group", name="Where Deploy runs").get_by_label("AWS account")
    assert account.locator("option").all_inner_texts() == [f"{ORG_ACCOUNT} (us-east-1)"]
    body, response = deployed_body(page)
    assert body == {"input": "Say hello in one sentence.", "accountId": ORG_ACCOUNT}, body
    shows_the_answer(page, response)

    page.get_by_role("link", name="Organisation").click()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=f"Disconnect account {ORG_ACCOUNT}").click()
    page.get_by_role("cell", name="No AWS accounts connected yet.").wait_for()
    assert ("DELETE", f"/org/accounts/{ORG_ACCOUNT}", None) in traffic.api_calls


def deployed_body(page: Any) -> tuple[Any, Any]:
    """Click Deploy; the body the console sent and the API's answer."""
    with page.expect_response(lambda r: r.url.endswith("/deployments")) as answered:
        page.get_by_role("button", name="Deploy to the organisation's AWS account").click()
    response = answered.value
    return json.loads(response.request.post_data), response


def shows_the_answer(page: Any, response: Any) -> None:
    """A run panel for a launch; the API's own message, as text, for a refusal."""
    if response.ok:
        page.get_by_role("region", name="Run").wait_for()
    else:
        message = response.json()["error"]["message"]
        page.get_by_role("alert").filter(has_text=message[:60]).wait_for()


def test_an_organisation_deploy_sends_only_the_account_and_region_chosen(
    page: Any, local_mode: LocalMode
) -> None:
    developer = "dev@regions.example"
    admin = local_mode.sign_in("admin@regions.example")
    organisation(local_mode, "admin@regions.example", "Regions", {developer: "developer"}, None)
    sign_in(page, developer)
    create_agent(page, "org-deployer")
    fieldset = page.get_by_role("group", name="Where Deploy runs")
    fieldset.get_by_text("No account is connected and SSO is not set up").wait_for()
    assert fieldset.get_by_label("AWS account").count() == 0
    region = fieldset.get_by_label("Region", exact=True)
    # No allowed regions: any AWS region, typed; a wrong one is refused before sending.
    region.fill("Europe")
    page.get_by_role("button", name="Deploy to the organisation's AWS account").click()
    assert region.evaluate("input => input.validity.patternMismatch")
    region.fill("")
    body, response = deployed_body(page)
    assert body == {"input": "Say hello in one sentence."}, body
    shows_the_answer(page, response)
    region.fill("eu-west-1")
    body, response = deployed_body(page)
    assert body == {"input": "Say hello in one sentence.", "region": "eu-west-1"}, body
    shows_the_answer(page, response)

    # Allowed regions: a choice among them.
    changed = local_mode.request(
        "PATCH", "/org", token=admin, body={"allowedRegions": ["eu-west-1", "eu-central-1"]}
    )
    assert changed.status == 200, changed.body
    page.reload()
    region = page.get_by_role("group", name="Where Deploy runs").get_by_role(
        "combobox", name="Region", exact=True
    )
    region.wait_for()
    options = region.locator("option").all_inner_texts()
    assert options[0] == "Default" and sorted(options[1:]) == ["eu-central-1", "eu-west-1"], options
    region.select_option("eu-central-1")
    body, response = deployed_body(page)
    assert body == {"input": "Say hello in one sentence.", "region": "eu-central-1"}, body
    shows_the_answer(page, response)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "enterprise-deploy.png"), full_page=True)


def test_the_deploy_choice_defaults_to_the_only_account_and_asks_among_several(page: Any) -> None:
    """Local mode cannot connect an organisation account (its StackSet is not emulated), so
    the choice is checked on canned answers of GET /org and GET /org/accounts."""
    decided = page.evaluate(
        """async () => {
          const { deployTarget } = await import('/js/org_accounts.js');
          const app = (org, accounts) => ({
            api: { call: async (name) => (name === 'getOrg' ? org : { accounts }) } });
          const pick = (target) => target.element.querySelector('select[name=accountId]');
          const one = await deployTarget(app({ allowedRegions: null, sso: null },
            [{ accountId: '111111111111', region: 'eu-west-1' }]));
          const several = await deployTarget(app({ allowedRegions: ['eu-west-1'], sso: null },
            [{ accountId: '111111111111' }, { accountId: '222222222222' }]));
          const unchosen = several.choice();
          pick(several).value = '222222222222';
          return {
            one: [pick(one).required, one.choice()],
            several: [pick(several).required, unchosen, several.choice()],
            labels: [...several.element.querySelectorAll('label')].map((l) => l.textContent),
          };
        }"""
    )
    assert decided == {
        "one": [False, {"accountId": "111111111111"}],
        "several": [True, {}, {"accountId": "222222222222"}],
        "labels": ["AWS account", "Region"],
    }
