// Tier 3 sign-in and sessions, on the Organisation screen (loaded only there): the admin's
// SSO settings (the IAM Identity Center SAML application, e-mail domains, the account and
// permission set members deploy with), and a member's IAM Identity Center session (the
// device flow: a code to confirm at a link, then active until it expires).
import { h, field, facts, when } from "./dom.js";
import { explain } from "./api.js";
import { actionForm, clickAction } from "./org.js";

export const REGION_PATTERN = "[a-z]{2}(-[a-z]+)+-[0-9]{1,2}";
const SESSION_POLL_MS = 3000; // the API itself asks IAM Identity Center no faster than it allows

/** SSO sign-in: the settings (read-only for members), and for admins the form and removal. */
export function ssoSection(app, org) {
  const admin = org.role === "admin";
  const sso = org.sso;
  const parts = [h("h2", { id: "sso-heading" }, "SSO sign-in")];
  if (sso) {
    parts.push(
      h("p", {}, "The platform's sign-in page sends addresses of these e-mail domains to your IAM Identity Center."),
      facts([
        ["Identity provider", h("code", {}, sso.providerName)],
        ["E-mail domains", (sso.emailDomains ?? []).join(", ")],
        ["SAML entity id", sso.entityId],
        ["SAML metadata", sso.metadataUrl ?? "a pasted document"],
        ["AWS access portal", sso.startUrl],
        ["IAM Identity Center region", sso.ssoRegion],
        ["Account for deployments", sso.accountId],
        ["Permission set", sso.permissionSetRole],
        ["Updated", when(sso.updatedAt)],
      ]));
    if (admin) {
      parts.push(
        clickAction(app, "Remove SSO", "Remove SSO", () => app.api.call("removeSso"), {
          danger: true,
          confirmText: "Remove SSO sign-in? Your e-mail domains are released, members can no longer sign in through IAM Identity Center, and nobody can start an IAM Identity Center session.",
        }),
        h("details", {}, h("summary", {}, "Change the SSO settings"), ssoForm(app, sso)));
    }
  } else {
    parts.push(h("p", {}, "Not set up: members sign in with e-mail, Google or GitHub.",
      admin ? "" : " An admin of the organisation can set it up."));
    if (admin) parts.push(setUpSteps(app), ssoForm(app, null));
  }
  return h("section", { "aria-labelledby": "sso-heading" }, parts);
}

/** What the admin does in IAM Identity Center before this form (docs/enterprise.md has it all). */
function setUpSteps(app) {
  const domain = app.config.cognito?.domain;
  return h("details", {}, h("summary", {}, "Before you start: the SAML application in IAM Identity Center"),
    h("ol", {},
      h("li", {}, "In IAM Identity Center: Applications → Add application → SAML 2.0."),
      h("li", {}, "Application ACS URL: ", domain ? h("code", {}, `${domain}/saml2/idpresponse`) : "your hosted sign-in domain followed by /saml2/idpresponse",
        "; SAML audience: urn:amazon:cognito:sp:<user pool id> (your platform owner has both)."),
      h("li", {}, "Attribute mappings: Subject → ${user:subject} (persistent), email → ${user:email}, name → ${user:name} (unspecified)."),
      h("li", {}, "Assign the users or groups who may sign in, then copy the application's SAML metadata URL or file here.")));
}

function ssoForm(app, sso) {
  const useXml = Boolean(sso && !sso.metadataUrl);
  const fromUrl = h("input", { type: "radio", name: "metadataSource", value: "url", checked: !useXml });
  const fromXml = h("input", { type: "radio", name: "metadataSource", value: "xml", checked: useXml });
  const url = h("input", { name: "samlMetadataUrl", type: "url", maxlength: 2048, autocomplete: "off", value: sso?.metadataUrl ?? "" });
  const xml = h("textarea", { name: "samlMetadataXml", spellcheck: "false", autocomplete: "off" });
  const urlField = field("Metadata URL", url,
    "IAM Identity Center's SAML metadata file URL: https, reachable from the internet.");
  const xmlField = field("Metadata document", xml,
    "Paste the metadata file's XML (at most 512 KiB): an IdP with a signing certificate that has not expired.");
  const choose = () => {
    const pasted = fromXml.checked;
    urlField.hidden = pasted;
    xmlField.hidden = !pasted;
    url.required = !pasted;
    xml.required = pasted;
  };
  fromUrl.addEventListener("change", choose);
  fromXml.addEventListener("change", choose);
  choose();
  const domains = h("input", { name: "emailDomains", required: true, autocomplete: "off", value: (sso?.emailDomains ?? []).join(", ") });
  const startUrl = h("input", { name: "startUrl", type: "url", required: true, maxlength: 256, autocomplete: "off",
    placeholder: "https://d-1234567890.awsapps.com/start", value: sso?.startUrl ?? "" });
  const region = h("input", { name: "ssoRegion", required: true, maxlength: 32, pattern: REGION_PATTERN, autocomplete: "off",
    spellcheck: "false", placeholder: "eu-west-1", value: sso?.ssoRegion ?? "" });
  const account = h("input", { name: "accountId", required: true, pattern: "[0-9]{12}", inputmode: "numeric", autocomplete: "off",
    value: sso?.accountId ?? "" });
  const permissionSet = h("input", { name: "permissionSetRole", required: true, maxlength: 64, autocomplete: "off",
    value: sso?.permissionSetRole ?? "" });
  return actionForm(app, "SSO settings", [
    h("fieldset", {}, h("legend", {}, "SAML metadata"),
      h("label", {}, fromUrl, " A URL"), h("label", {}, fromXml, " A pasted document")),
    urlField, xmlField,
    field("E-mail domains", domains,
      "Comma-separated, e.g. example.com, eu.example.com (exact: a subdomain is listed on its own). A domain belongs to one organisation; public mail services are refused."),
    field("AWS access portal URL", startUrl, "IAM Identity Center's start URL (Settings → Identity source)."),
    field("IAM Identity Center region", region, "The AWS region of your IAM Identity Center instance, e.g. eu-west-1."),
    field("AWS account id", account, "12 digits: the account members deploy into with their IAM Identity Center session."),
    field("Permission set name", permissionSet, "The permission set they deploy with in that account (assigned to them there)."),
  ], sso ? "Save SSO settings" : "Set up SSO", () => {
    const body = {
      emailDomains: domains.value.split(",").map((d) => d.trim()).filter(Boolean),
      startUrl: startUrl.value.trim(),
      ssoRegion: region.value.trim(),
      accountId: account.value.trim(),
      permissionSetRole: permissionSet.value.trim(),
    };
    if (fromXml.checked) body.samlMetadataXml = xml.value;
    else body.samlMetadataUrl = url.value.trim();
    return app.api.call("configureSso", { body });
  });
}

/** A member's IAM Identity Center session: start it (developers, admins), follow it, end it. */
export async function sessionSection(app, org) {
  const section = h("section", { "aria-labelledby": "session-heading" }, h("h2", { id: "session-heading" }, "AWS session"));
  if (!org.sso) {
    section.append(h("p", {}, "IAM Identity Center sessions need SSO sign-in, which is not set up."));
    return section;
  }
  if (org.role === "viewer") {
    section.append(h("p", {}, "Viewers deploy nothing, so they start no IAM Identity Center session."));
    return section;
  }
  const body = h("div", {});
  const note = h("p", { class: "error", hidden: true });
  section.append(
    h("p", { class: "hint" }, `Deploy as yourself: an IAM Identity Center session gives your deployments the permission set ${org.sso.permissionSetRole} in account ${org.sso.accountId}.`),
    body, note);
  const session = new SessionView(app, body, note);
  try {
    session.show(await app.api.call("getSsoSession"));
  } catch (error) {
    session.failed(error);
  }
  return section;
}

class SessionView {
  constructor(app, element, note) {
    this.app = app;
    this.element = element;
    this.note = note; // the last error, in words
    this.generation = app.generation; // the screen this view belongs to
    this.flow = null; // the device authorization started from this page, with its code
    this.polling = false;
  }

  get current() {
    return this.generation === this.app.generation;
  }

  render(...children) {
    this.element.replaceChildren(...children);
    this.note.hidden = true;
  }

  statusLine(status, detail) {
    return h("p", { role: "status" }, "Status: ", h("strong", { class: status === "active" ? "ok" : "" }, status), detail ? ` — ${detail}` : "");
  }

  show(session) {
    if (!this.current) return;
    if (session.status === "active") {
      this.flow = null;
      this.render(this.statusLine("active", `until ${when(session.expiresAt)}`),
        h("p", {}, "Your deployments run with your IAM Identity Center permission set."),
        this.button("End session", "secondary", async () => {
          await this.app.api.call("endSsoSession");
          this.show({ status: "none" });
        }));
    } else if (session.status === "pending") {
      this.render(this.statusLine("pending", `confirm the code before ${when(session.expiresAt)}`),
        this.flow ? this.confirmation(this.flow)
          : h("p", {}, "A sign-in started elsewhere waits for its code to be confirmed. If you no longer have its link, start again."),
        this.button(this.flow ? "Start again" : "Start AWS session", "secondary", () => this.start()));
      this.poll();
    } else {
      this.flow = null;
      this.render(this.statusLine("none", session.reason ?? "no IAM Identity Center session"),
        this.button("Start AWS session", "", () => this.start()));
    }
  }

  confirmation(flow) {
    return h("div", { class: "card" },
      h("p", {}, "Your code: ", h("strong", { class: "code" }, flow.userCode)),
      h("p", {}, h("a", { class: "button", href: flow.verificationUriComplete, target: "_blank", rel: "noopener noreferrer" },
        "Confirm the code in IAM Identity Center"), " (opens in a new tab)"),
      h("p", { class: "hint" }, "Check that the page shows the same code, sign in if asked, and allow. This page notices by itself."));
  }

  button(text, kind, action) {
    return h("button", {
      type: "button",
      class: kind || undefined,
      onclick: async (event) => {
        const button = event.currentTarget;
        button.disabled = true;
        try {
          await action();
        } catch (error) {
          this.failed(error);
        } finally {
          button.disabled = false;
        }
      },
    }, text);
  }

  async start() {
    this.flow = await this.app.api.call("startSsoSession");
    this.show({ status: "pending", expiresAt: this.flow.expiresAt });
  }

  failed(error) {
    if (!this.current) return;
    this.note.textContent = explain(error);
    this.note.hidden = false;
  }

  /** While pending: read the session every few seconds until it is active or gone. */
  async poll() {
    if (this.polling) return;
    this.polling = true;
    try {
      while (this.current) {
        await new Promise((resolve) => setTimeout(resolve, SESSION_POLL_MS));
        if (!this.current) return;
        let session;
        try {
          session = await this.app.api.call("getSsoSession");
        } catch (error) {
          this.failed(error);
          // A refusal stays one; a network blip, a 5xx or a 429 may pass: keep reading.
          if (error.status && error.status < 500 && error.status !== 429) return;
          continue;
        }
        if (session.status !== "pending") {
          this.show(session);
          return;
        }
      }
    } finally {
      this.polling = false;
    }
  }
}
