// The organisation's AWS accounts (loaded only on the Organisation screen and an
// organisation agent's Deploy): the connected accounts, the admin's Launch Stack link of
// the StackSet, disconnecting one; and where an organisation member's Deploy runs.
import { h, field, facts, when } from "./dom.js";
import { explain } from "./api.js";
import { clickAction } from "./org.js";
import { REGION_PATTERN } from "./sso.js";

/** The connected accounts (every member reads them); admins connect and disconnect. */
export async function accountsSection(app, org) {
  const admin = org.role === "admin";
  const { accounts } = await app.api.call("listOrgAccounts");
  const columns = ["Account", "Region", "Template", "Connected"];
  const rows = accounts.map((account) => h("tr", {},
    h("td", {}, account.accountId),
    h("td", {}, account.region ?? ""),
    h("td", {}, account.templateVersion,
      account.templateOutdated ? h("span", { class: "error" }, " (outdated: a newer template exists)") : ""),
    h("td", { class: "optional" }, when(account.connectedAt), account.status === "connected" ? "" : ` (${account.status})`),
    admin ? h("td", {}, clickAction(app, `Disconnect account ${account.accountId}`, "Disconnect",
      () => app.api.call("disconnectOrgAccount", { params: { accountId: account.accountId } }),
      { danger: true, confirmText: `Disconnect account ${account.accountId}? Deployments stop going there; its stack stays until you delete it.` }))
      : null));
  if (!rows.length) {
    rows.push(h("tr", {}, h("td", { colspan: columns.length + (admin ? 1 : 0) }, "No AWS accounts connected yet.")));
  }
  return h("section", { "aria-labelledby": "accounts-heading" },
    h("h2", { id: "accounts-heading" }, "AWS accounts"),
    h("p", { class: "hint" }, "The organisation's deployments run in these accounts (or, with an IAM Identity Center session, in the SSO settings' account)."),
    h("table", {},
      h("caption", { class: "hint" }, "Connected AWS accounts"),
      h("thead", {}, h("tr", {}, columns.map((name) => h("th", { scope: "col", class: name === "Connected" ? "optional" : undefined }, name)),
        admin ? h("th", { scope: "col" }, "Actions") : null)),
      h("tbody", {}, rows)),
    admin ? connect(app) : null);
}

function connect(app) {
  const result = h("div", {});
  const button = h("button", { type: "button" }, "Connect AWS accounts");
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      result.replaceChildren(launch(app, await app.api.call("startOrgOnboarding", { body: {} })));
    } catch (error) {
      result.replaceChildren(h("p", { class: "error" }, explain(error)));
    } finally {
      button.disabled = false;
    }
  });
  return h("div", {},
    h("p", {}, "Connect every account of some organizational units at once: a StackSet deploys the onboarding stack in each, and each registers itself here. A new link replaces the previous one's registration token."),
    button, result);
}

function launch(app, onboarding) {
  return h("section", { class: "card", "aria-label": "Launch Stack for the organisation" },
    h("h3", {}, "Launch the organisation's StackSet"),
    h("ol", {},
      h("li", {}, "Open the Launch Stack link signed in to your management account (or a delegated StackSets administrator)."),
      h("li", {}, "Fill in OrganizationalUnitIds (the OUs, or the root r-…); keep the prefilled parameters; tick the IAM acknowledgement and create the stack."),
      h("li", {}, onboarding.registration === "automatic"
        ? "Each account of those OUs gets the stack and connects itself: it appears in the table above (refresh)."
        : "Outside the platform's region the stacks cannot register themselves: ask your platform owner."),
      h("li", {}, "Fetching a new link later replaces the registration token: update the StackSet's RegistrationToken parameter then.")),
    h("a", { class: "button", href: onboarding.launchStackUrl, target: "_blank", rel: "noopener noreferrer" }, "Launch Stack"),
    facts([
      ["Region", onboarding.region],
      ["External ID", h("span", {}, h("code", {}, onboarding.externalId),
        h("span", { class: "hint" }, " — not a secret (AWS says so): each account's role requires it, and only the registration token in the link registers an account."))],
      ["StackSet template", h("code", {}, onboarding.stackSetTemplateUrl)],
      ["Organisation template", h("code", {}, onboarding.organizationTemplateUrl)],
    ]),
    h("p", { class: "hint" }, "Creating the StackSet yourself? Use the StackSet template's URL with the same ExternalId and RegistrationToken parameters (docs/enterprise.md)."),
    h("button", { type: "button", class: "secondary", onclick: () => app.go("#/org") }, "Refresh the accounts"));
}

/**
 * Where an organisation member's Deploy runs: which connected account, which region.
 * `choice()` has only what the member chose (the API defaults the rest).
 */
export async function deployTarget(app) {
  const [org, listing] = await Promise.all([
    app.api.call("getOrg"),
    app.api.call("listOrgAccounts").catch((error) => ({ accounts: [], error })),
  ]);
  const accounts = listing.accounts;
  const parts = [h("legend", {}, "Where Deploy runs")];
  let account = null;
  if (accounts.length) {
    account = h("select", { name: "accountId", required: accounts.length > 1 },
      accounts.length > 1 ? h("option", { value: "" }, "Choose an account") : null,
      accounts.map((a) => h("option", { value: a.accountId }, a.region ? `${a.accountId} (${a.region})` : a.accountId)));
    parts.push(field("AWS account", account, "One of the organisation's connected accounts."));
  } else {
    parts.push(h("p", { class: "hint" }, listing.error ? explain(listing.error)
      : org.sso ? `No account is connected: deployments use your IAM Identity Center session (account ${org.sso.accountId}).`
        : "No account is connected and SSO is not set up: an admin connects one on the Organisation screen."));
  }
  let region;
  if (org.allowedRegions?.length) {
    region = h("select", { name: "region" }, h("option", { value: "" }, "Default"),
      org.allowedRegions.map((name) => h("option", { value: name }, name)));
    parts.push(field("Region", region, "The regions your organisation allows. Default: no region is sent (the platform chooses)."));
  } else {
    region = h("input", { name: "region", pattern: REGION_PATTERN, maxlength: 32, autocomplete: "off", spellcheck: "false", placeholder: "eu-west-1" });
    parts.push(field("Region", region, "Optional: an AWS region name such as eu-west-1. Empty: the platform chooses."));
  }
  return {
    element: h("fieldset", { class: "fields" }, parts),
    choice() {
      const chosen = {};
      if (account?.value) chosen.accountId = account.value;
      if (region.value.trim()) chosen.region = region.value.trim();
      return chosen;
    },
  };
}
