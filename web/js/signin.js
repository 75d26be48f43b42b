// Sign-in: the hosted page in AWS; the local stand-in's form (e-mail + provider) locally.
import { h, field } from "./dom.js";

const PROVIDERS = [
  ["email", "E-mail"],
  ["google", "Google"],
  ["github", "GitHub"],
];

export function signInScreen(app) {
  if (app.config.mode === "local") return localForm(app);
  const start = (provider) => app.session.beginHostedSignIn(provider).catch((error) => app.showError(error));
  return h("div", {},
    h("h1", {}, "Sign in"),
    h("p", {}, "Build an AI agent, test it on the platform and watch it answer."),
    h("button", { type: "button", onclick: () => start() }, "Sign in or sign up"),
    h("p", { class: "hint" }, "E-mail, Google, GitHub or your company's SSO, on the platform's sign-in page."));
}

function localForm(app) {
  const email = h("input", { type: "email", name: "email", required: true, autocomplete: "email", value: "me@example.com" });
  const radios = PROVIDERS.map(([value, label], index) => {
    const input = h("input", { type: "radio", name: "provider", value, id: `provider-${value}`, checked: index === 0 });
    return [input, h("label", { for: `provider-${value}` }, label)];
  });
  const status = h("p", { role: "status" });
  const button = h("button", { type: "submit" }, "Sign in");
  const form = h("form", { "aria-label": "Sign in" },
    field("E-mail address", email, "Local mode signs you in without a password: any address works."),
    h("fieldset", {}, h("legend", {}, "Sign in with"), radios),
    button, status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    status.textContent = "Signing in…";
    const provider = form.querySelector("input[name=provider]:checked")?.value ?? "email";
    try {
      await app.session.signInLocally(email.value.trim(), provider);
    } catch (error) {
      status.textContent = "";
      status.append(h("span", { class: "error" }, `Sign-in failed: ${error.message}`));
      button.disabled = false;
    }
  });
  return h("div", {}, h("h1", {}, "Sign in"),
    h("p", {}, "Local mode: the whole platform on this machine, with an emulated AWS."), form);
}
