// One run as it happens: its status, the answer as the runner writes it, how it ended.
import { h, facts, when } from "./dom.js";
import { explain } from "./api.js";

const POLL_MS = 1200;
const FINAL = new Set(["STOPPED", "FAILED"]);

export function runPanel(run) {
  const status = h("span", { class: "status", "data-status": "" });
  const answer = h("pre", { class: "answer", "aria-label": "Answer", "aria-live": "polite" });
  const outcome = h("div", {});
  const problems = h("div", {});
  const element = h("section", { "aria-label": "Run", class: "card" },
    h("p", {}, "Run ", h("code", {}, run.runId),
      run.target === "platform" ? " on the platform" : run.accountId ? ` in account ${run.accountId}` : "",
      ": ", h("span", { role: "status" }, status)),
    h("h3", {}, "Answer"), answer, outcome, problems);
  const panel = {
    element,
    setStatus(value) {
      status.textContent = value ?? "PENDING";
      status.dataset.status = value ?? "PENDING";
    },
    addText(text) {
      answer.append(text);
    },
    addNote(text) {
      problems.append(h("p", { class: "error" }, text));
    },
    finish(final) {
      outcome.replaceChildren(h("div", {}, h("h3", {}, "Result"), facts([
        ["Exit code", final.exitCode === null || final.exitCode === undefined ? "none" : String(final.exitCode)],
        ["Stop reason", final.stopReason],
        ["Started", when(final.startedAt)],
        ["Stopped", when(final.stoppedAt)],
      ]), receipt(final.receipt)));
    },
  };
  panel.setStatus(run.status);
  return panel;
}

/** The receipt of a finished run: tokens, duration and the estimated cost, when the API has it. */
export function receipt(value) {
  if (!value) return null;
  const cost = value.estimatedCostUsd ?? {};
  return h("section", { "aria-label": "Receipt" }, h("h3", {}, "Receipt"), facts([
    ["Input tokens", value.inputTokens],
    ["Output tokens", value.outputTokens],
    ["Duration", value.durationSeconds === undefined ? undefined : `${value.durationSeconds} s`],
    ["Compute cost", usd(cost.compute)],
    ["Model cost", usd(cost.model)],
    ["Estimated total", usd(cost.total)],
    ["Priced at", when(value.pricedAt)],
  ]));
}

export function usd(amount) {
  if (amount === undefined || amount === null) return undefined;
  const value = Number(amount);
  return `$${value < 0.01 && value > 0 ? value.toPrecision(2) : value.toFixed(value < 1 ? 4 : 2)}`;
}

/** Poll the run and its logs every POLL_MS while it is live; the logs once more at the end. */
export async function followRun(app, run, panel) {
  const generation = app.generation;
  const runId = run.runId;
  let token;
  let current = run;
  const readLogs = async () => {
    for (;;) {
      const page = await app.api.call("getRunLogs", { params: { runId }, query: { nextToken: token } });
      for (const line of page.lines ?? []) render(line.message, panel);
      if (!page.nextToken || page.nextToken === token) return;
      token = page.nextToken;
      if (!(page.lines ?? []).length) return;
    }
  };
  while (generation === app.generation) {
    try {
      await readLogs();
      if (FINAL.has(current.status)) break;
      await sleep(POLL_MS);
      current = await app.api.call("getRun", { params: { runId } });
      panel.setStatus(current.status);
      if (FINAL.has(current.status)) await readLogs();
    } catch (error) {
      panel.addNote(explain(error));
      if (error.status && error.status < 500 && error.status !== 429) return;
      await sleep(POLL_MS * 2);
    }
  }
  if (generation === app.generation && FINAL.has(current.status)) panel.finish(current);
}

/** A runner log line: JSON events ({"event":"output","text":...} is the answer). */
function render(message, panel) {
  let event;
  try {
    event = JSON.parse(message);
  } catch {
    return; // not the runner's: the platform's own lines are not the answer
  }
  if (event?.event === "output" && typeof event.text === "string") panel.addText(event.text);
  else if (event?.event === "run.finished" && event.error) panel.addNote(`The run failed: ${event.error} (${event.errorCode ?? event.status})`);
  else if (event?.event === "run.stopped") panel.addNote(`Stopped: ${event.reason ?? ""}`);
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
