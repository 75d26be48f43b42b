// "Connect my AWS account": the Launch Stack link, the connection, the update notice, disconnect.
import { h, facts, when } from "./dom.js";
import { ApiError, explain } from "./api.js";

export async function accountScreen(app) {
  let account = null;
  try {
    account = await app.api.call("getAccount");
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404)) throw error;
  }
  return h("div", {}, h("h1", {}, "AWS account"), account ? connected(app, account) : connect(app));
}

function connected(app, account) {
  const outdated = account.templateOutdated && account.updateUrl;
  return h("div", {},
    h("p", { class: "ok" }, `Connected: agents you deploy run in account ${account.accountId}.`),
    h("section", { "aria-label": "Connection" }, facts([
      ["Status", account.status],
      ["Account", account.accountId],
      ["Region", account.region],
      ["Role", account.roleArn],
      ["Cluster", account.clusterArn],
      ["Template version", account.templateVersion],
      ["Connected", `${when(account.connectedAt)} (${account.connectedVia})`],
    ])),
    outdated ? updateNotice(account) : null,
    h("button", {
      type: "button",
      class: "danger",
      onclick: async (event) => {
        if (!confirm("Disconnect this AWS account? Deployments go back to the platform's free tier.")) return;
        event.currentTarget.disabled = true;
        try {
          await app.api.call("disconnectAccount");
          app.go("#/account");
        } catch (error) {
          app.showError(error);
          event.currentTarget.disabled = false;
        }
      },
    }, "Disconnect"));
}

function updateNotice(account) {
  const changes = account.changes;
  const list = [];
  if (changes) {
    for (const resource of changes.resources?.added ?? []) list.push(`adds ${describe(resource)}`);
    for (const resource of changes.resources?.removed ?? []) list.push(`removes ${describe(resource)}`);
    for (const role of changes.permissions ?? []) {
      const name = role.roleName ?? role.role;
      if (role.actionsAdded.length) list.push(`${name} may also: ${role.actionsAdded.join(", ")}`);
      if (role.actionsRemoved.length) list.push(`${name} no longer: ${role.actionsRemoved.join(", ")}`);
      if (role.trustPolicyChanged) list.push(`${name}: who may assume it changes`);
    }
    for (const name of changes.parameters?.added ?? []) list.push(`new parameter ${describe(name)}`);
    for (const name of changes.parameters?.removed ?? []) list.push(`parameter removed: ${describe(name)}`);
  }
  return h("section", { "aria-label": "Template update", class: "card" },
    h("h2", {}, "A newer onboarding template exists"),
    h("p", {}, `Your stack runs template ${account.templateVersion}; the platform publishes ${account.latestTemplateVersion}.`),
    list.length ? h("ul", {}, list.map((text) => h("li", {}, text))) : null,
    h("a", { class: "button", href: account.updateUrl, target: "_blank", rel: "noopener noreferrer" }, "Update the stack in CloudFormation"));
}

function describe(item) {
  return typeof item === "string" ? item : `${item.logicalId} (${item.type})`;
}

function connect(app) {
  const result = h("div", {});
  const button = h("button", { type: "button" }, "Connect my AWS account");
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const onboarding = await app.api.call("startOnboarding", { body: {} });
      result.replaceChildren(launch(app, onboarding));
    } catch (error) {
      result.replaceChildren(h("p", { class: "error" }, explain(error)));
    } finally {
      button.disabled = false;
    }
  });
  return h("div", {},
    h("p", {}, "Not connected: tests run on the platform's free tier. Connect your own AWS account to deploy agents there and pay AWS directly."),
    button, result);
}

function launch(app, onboarding) {
  return h("section", { class: "card", "aria-label": "Launch Stack" },
    h("h2", {}, "Launch the onboarding stack"),
    h("ol", {},
      h("li", {}, "Open the Launch Stack link while signed in to your AWS account; the parameters are filled in."),
      h("li", {}, "Tick the IAM acknowledgement and create the stack."),
      h("li", {}, onboarding.registration === "automatic"
        ? "When the stack completes it connects itself: check the connection here."
        : "When it completes, the stack's RoleArn output connects the account (PUT /aws-account).")),
    h("a", { class: "button", href: onboarding.launchStackUrl, target: "_blank", rel: "noopener noreferrer" }, "Launch Stack"),
    facts([
      ["Stack name", onboarding.stackName],
      ["Region", onboarding.region],
      ["External ID", h("code", {}, onboarding.externalId)],
      ["Template", onboarding.templateUrl],
    ]),
    h("button", { type: "button", class: "secondary", onclick: () => app.go("#/account") }, "Check the connection"));
}
