// Usage: this month's tests against the limit, when they reset, the month's tokens and cost.
import { h, facts, when } from "./dom.js";
import { usd } from "./runs.js";

export async function usageScreen(app) {
  const me = await app.api.call("getMe");
  return h("div", {}, h("h1", {}, "Usage"), usageSummary(me), facts([
    ["Signed in as", me.email ?? me.userId],
    ["Tier", me.tier],
    ["Organisation", me.organizationId],
    ["Role", me.role],
  ]));
}

/** The month at a glance; shown on the agents screen too. */
export function usageSummary(me) {
  const usage = me?.usage ?? {};
  const used = usage.testsUsed ?? 0;
  const limit = usage.testsLimit ?? 0;
  const left = Math.max(0, limit - used);
  const cost = usage.estimatedCostUsd;
  const tokens = usage.inputTokens !== undefined || usage.outputTokens !== undefined
    ? `${usage.inputTokens ?? 0} in, ${usage.outputTokens ?? 0} out` : undefined;
  return h("section", { "aria-label": "This month's usage" },
    h("p", {}, h("strong", {}, `${used} of ${limit}`), ` free tests used in ${usage.month ?? "this month"}`,
      left === 0 ? h("span", { class: "error" }, " (none left)") : ` (${left} left)`),
    h("progress", { max: limit || 1, value: Math.min(used, limit), "aria-label": "Tests used" }),
    facts([
      ["Resets", when(usage.resetsAt)],
      ["Tokens this month", tokens],
      ["Estimated cost this month", typeof cost === "object" && cost !== null ? usd(cost.total) : usd(cost)],
    ]));
}
