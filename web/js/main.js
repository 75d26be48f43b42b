// The console's shell: config, session, the API client, the hash router and the alert.
import { ApiClient, explain } from "./api.js";
import { Session } from "./auth.js";
import { h } from "./dom.js";
import { accountScreen } from "./account.js";
import { agentScreen, agentsScreen } from "./agents.js";
import { orgScreen } from "./org.js";
import { signInScreen } from "./signin.js";
import { usageScreen } from "./usage.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const alertBox = document.getElementById("alert");

/** Shared by the screens: the API, the session, the config, and how to report. */
const app = {
  config: null,
  session: null,
  api: null,
  generation: 0, // bumped at each navigation: pollers of a left screen stop
  showError(error) {
    alertBox.replaceChildren(h("p", {}, explain(error)));
    alertBox.hidden = false;
  },
  clearError() {
    alertBox.hidden = true;
    alertBox.replaceChildren();
  },
  go(hash) {
    if (location.hash === hash) render();
    else location.hash = hash;
  },
};

const ROUTES = [
  [/^#\/agents\/([^/]+)$/, (match) => agentScreen(app, decodeURIComponent(match[1]))],
  [/^#\/usage$/, () => usageScreen(app)],
  [/^#\/account$/, () => accountScreen(app)],
  [/^#\/org$/, () => orgScreen(app)],
  [/^(#\/agents)?$/, () => agentsScreen(app)],
];

async function render() {
  const generation = ++app.generation;
  app.clearError();
  nav.hidden = !app.session.signedIn;
  if (!app.session.signedIn) {
    show(generation, signInScreen(app));
    return;
  }
  for (const link of nav.querySelectorAll("a")) {
    const current = location.hash.startsWith(link.getAttribute("href")) || (!location.hash && link.getAttribute("href") === "#/agents");
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const route = ROUTES.find(([pattern]) => pattern.test(location.hash)) ?? ROUTES.at(-1);
  show(generation, h("p", {}, "Loading…"));
  try {
    await app.session.fresh();
    const screen = await route[1](location.hash.match(route[0]) ?? []);
    show(generation, screen);
  } catch (error) {
    if (generation !== app.generation) return;
    app.showError(error);
    show(generation, h("div", {}, h("h1", {}, "This page could not load"), h("p", {}, explain(error)),
      h("button", { type: "button", onclick: () => render() }, "Try again")));
  }
}

function show(generation, content) {
  if (generation !== app.generation) return;
  main.replaceChildren(content);
  const heading = main.querySelector("h1");
  if (heading) document.title = `${heading.textContent} · agent-builder`;
}

async function start() {
  try {
    const response = await fetch("/config.json", { cache: "no-store" });
    if (!response.ok) throw new Error(`config.json: HTTP ${response.status}`);
    app.config = await response.json();
  } catch (error) {
    main.replaceChildren(h("h1", {}, "The console has no configuration"),
      h("p", { class: "error" }, `It reads /config.json, written by the deployment or local mode: ${error.message}`));
    return;
  }
  app.session = new Session(app.config);
  app.api = new ApiClient(app.config.apiUrl, {
    token: () => app.session.token(),
    refresh: () => app.session.refresh(),
    signedOut: () => {
      app.session.save(null);
    },
  });
  app.session.onChange(() => render());
  document.getElementById("sign-out").addEventListener("click", () => {
    // The next person to sign in starts at the agents, not on the last one's page.
    history.replaceState(null, "", location.pathname);
    app.session.signOut().catch((error) => app.showError(error));
  });
  window.addEventListener("hashchange", () => render());
  try {
    await app.session.completeHostedSignIn();
  } catch (error) {
    app.showError(error);
  }
  await render();
}

window.addEventListener("error", (event) => app.showError(event.error ?? new Error(event.message)));
window.addEventListener("unhandledrejection", (event) => app.showError(event.reason ?? new Error("unknown")));
start();
