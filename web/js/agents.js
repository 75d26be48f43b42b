// Agents: the list, the create form, one agent with its Test box, delete.
import { h, field, facts, when } from "./dom.js";
import { explain, idempotencyKey } from "./api.js";
import { followRun, runPanel } from "./runs.js";
import { usageSummary } from "./usage.js";
import { permissions } from "./org.js";

export async function agentsScreen(app) {
  const [page, me] = await Promise.all([app.api.call("listAgents", { query: { limit: 100 } }), app.api.call("getMe")]);
  const agents = page.agents;
  return h("div", {},
    h("h1", {}, "Agents"),
    usageSummary(me),
    agents.length ? agentTable(app, me, agents)
      : h("p", {}, permissions(me).create ? "No agents yet: create one below." : "No agents yet."),
    permissions(me).create ? createForm(app)
      : h("p", { class: "hint" }, "As a viewer you can read the organisation's agents and runs; an admin can change your role."));
}

function agentTable(app, me, agents) {
  return h("table", {},
    h("caption", { class: "hint" }, `${agents.length} agent${agents.length === 1 ? "" : "s"}`),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Name"), h("th", { scope: "col" }, "Model"),
      h("th", { scope: "col", class: "optional" }, "Created"), h("th", { scope: "col" }, "Actions"))),
    h("tbody", {}, agents.map((agent) => h("tr", {},
      h("td", {}, h("a", { href: `#/agents/${encodeURIComponent(agent.agentId)}` }, agent.name)),
      h("td", {}, agent.model),
      h("td", { class: "optional" }, when(agent.createdAt)),
      h("td", {}, permissions(me, agent).remove ? deleteButton(app, agent, () => app.go("#/agents")) : "")))));
}

function deleteButton(app, agent, after) {
  return h("button", {
    type: "button",
    class: "danger",
    "aria-label": `Delete ${agent.name}`,
    onclick: async (event) => {
      if (!confirm(`Delete the agent ${agent.name}? Its runs stay readable.`)) return;
      event.currentTarget.disabled = true;
      try {
        await app.api.call("deleteAgent", { params: { agentId: agent.agentId } });
        after();
      } catch (error) {
        app.showError(error);
        event.currentTarget.disabled = false;
      }
    },
  }, "Delete");
}

function createForm(app) {
  const models = app.config.allowedModels ?? [];
  const name = h("input", { name: "name", required: true, maxlength: 64, pattern: "[A-Za-z0-9_\\-](?:[A-Za-z0-9 _\\-]*[A-Za-z0-9_\\-])?" });
  const model = h("select", { name: "model", required: true }, models.map((id) => h("option", { value: id }, id)));
  const instructions = h("textarea", { name: "instructions", required: true, maxlength: 16384 },
    "You are a helpful assistant. Answer briefly.");
  const temperature = h("input", { name: "temperature", type: "number", min: 0, max: 1, step: 0.1, inputmode: "decimal" });
  const maxTokens = h("input", { name: "maxTokens", type: "number", min: 1, max: app.config.maxOutputTokens ?? 1024, step: 1, inputmode: "numeric" });
  const status = h("p", { role: "status" });
  const button = h("button", { type: "submit" }, "Create agent");
  const form = h("form", { "aria-labelledby": "create-heading" },
    field("Name", name, "Letters, digits, spaces, '-' and '_'; at most 64."),
    field("Model", model, "The Bedrock models this platform allows."),
    field("Instructions", instructions, "The system prompt: what the agent is and how it answers."),
    field("Temperature (optional)", temperature, "0 to 1: higher is more varied."),
    field("Maximum output tokens (optional)", maxTokens, `1 to ${app.config.maxOutputTokens ?? 1024}.`),
    button, status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const parameters = {};
    if (temperature.value !== "") parameters.temperature = Number(temperature.value);
    if (maxTokens.value !== "") parameters.maxTokens = Number.parseInt(maxTokens.value, 10);
    const body = { name: name.value.trim(), model: model.value, instructions: instructions.value };
    if (Object.keys(parameters).length) body.parameters = parameters;
    button.disabled = true;
    status.textContent = "Creating…";
    try {
      const agent = await app.api.call("createAgent", { body });
      app.go(`#/agents/${encodeURIComponent(agent.agentId)}`);
    } catch (error) {
      status.replaceChildren(h("span", { class: "error" }, explain(error)));
      button.disabled = false;
    }
  });
  return h("section", {}, h("h2", { id: "create-heading" }, "Create an agent"), form);
}

export async function agentScreen(app, agentId) {
  const [agent, me] = await Promise.all([app.api.call("getAgent", { params: { agentId } }), app.api.call("getMe")]);
  const parameters = agent.parameters ?? {};
  const input = h("textarea", { name: "input", required: true, maxlength: 8192 }, "Say hello in one sentence.");
  // Test ignores the deployment fields: only the input must be valid for it.
  const test = h("button", { type: "submit", value: "test", formnovalidate: true }, "Test");
  const organisation = Boolean(me.organizationId);
  const ownAccount = me.tier === "personal" || me.tier === "enterprise";
  const deploy = h("button", { type: "submit", value: "deploy", class: "secondary" },
    organisation ? "Deploy to the organisation's AWS account" : ownAccount ? "Deploy to my AWS account" : "Deploy");
  // An organisation's Deploy may name its account and region (org_accounts.js, loaded only then).
  const target = organisation && permissions(me).launch
    ? await import("./org_accounts.js").then(({ deployTarget }) => deployTarget(app)) : null;
  const result = h("div", {});
  const form = h("form", { "aria-labelledby": "test-heading" },
    field("Input", input, organisation
      ? "Test runs on the platform (counts against this month's free tests); Deploy runs in an AWS account of the organisation."
      : ownAccount
        ? "Test runs on the platform (counts against this month's free tests); Deploy runs in your AWS account."
        : "What the agent is asked. Each test counts against this month's free tests."),
    target?.element, test, deploy);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const deploying = event.submitter?.value === "deploy";
    if (!deploying && !input.reportValidity()) return;
    const operation = deploying ? "startDeployment" : "startTest";
    const body = { input: input.value, ...(deploying && target ? target.choice() : {}) };
    // One key per click: a double click (or a retry of this click) is one run, counted once.
    const key = idempotencyKey();
    test.disabled = deploy.disabled = true;
    try {
      const run = await app.api.call(operation, { params: { agentId }, body, idempotencyKey: key });
      const panel = runPanel(run);
      result.replaceChildren(panel.element);
      test.disabled = deploy.disabled = false;
      await followRun(app, run, panel);
    } catch (error) {
      result.replaceChildren(h("p", { class: "error", role: "alert" }, explain(error)));
    } finally {
      test.disabled = deploy.disabled = false;
    }
  });
  return h("div", {},
    h("p", {}, h("a", { href: "#/agents" }, "← All agents")),
    h("h1", {}, agent.name),
    h("section", { "aria-label": "Definition" }, facts([
      ["Model", agent.model],
      ["Instructions", h("span", { class: "instructions" }, agent.instructions)],
      ["Temperature", parameters.temperature],
      ["Maximum output tokens", parameters.maxTokens],
      ["Created", when(agent.createdAt)],
    ]), permissions(me, agent).remove ? deleteButton(app, agent, () => app.go("#/agents")) : null),
    permissions(me).launch
      ? h("section", {}, h("h2", { id: "test-heading" }, "Test"), form, result)
      : h("p", { class: "hint" }, "As a viewer you cannot test or deploy agents."));
}
