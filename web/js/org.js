// Organisation: create one or accept an invitation; its settings, members, invitations,
// SSO sign-in, IAM Identity Center session, AWS accounts (sso.js and org_accounts.js, loaded
// only here) and audit trail. What the caller's role cannot do is not offered (the API
// refuses it anyway).
import { h, field, facts, when } from "./dom.js";
import { explain } from "./api.js";

export const ROLES = ["admin", "developer", "viewer"];

/** What the signed-in user may do, from GET /me (role is null outside an organisation). */
export function permissions(me, agent) {
  const role = me?.organizationId ? me.role : null;
  return {
    launch: role !== "viewer",
    create: role !== "viewer",
    // Developers delete only the agents they created; admins (and individuals) any of theirs.
    remove: role === null || role === "admin" || (role === "developer" && agent?.createdBy === me.userId),
  };
}

export async function orgScreen(app) {
  const me = await app.api.call("getMe");
  if (!me.organizationId) return noOrganisation(app);
  const [org, { ssoSection, sessionSection }, { accountsSection }] = await Promise.all([
    app.api.call("getOrg"), import("./sso.js"), import("./org_accounts.js")]);
  const admin = org.role === "admin";
  // The sections read their own listings at once; the screen shows when all have answered.
  const [members, invitations, session, accounts] = await Promise.all([
    membersSection(app, me, admin),
    admin ? invitationsSection(app) : null,
    sessionSection(app, org),
    accountsSection(app, org),
  ]);
  return h("div", {},
    h("h1", {}, org.name),
    h("section", { "aria-label": "Organisation" }, facts([
      ["Your role", org.role],
      ["Allowed regions", org.allowedRegions?.length ? org.allowedRegions.join(", ") : "every region"],
      ["Default role", org.defaultRole ?? "none"],
      ["Created", when(org.createdAt)],
    ]), admin ? settingsForm(app, org) : null),
    members,
    invitations,
    ssoSection(app, org),
    session,
    accounts,
    admin ? auditSection(app) : null);
}

/** A form whose submit runs `action`, shows its errors beside it and re-renders on success. */
export function actionForm(app, label, controls, buttonText, action) {
  const status = h("p", { role: "status" });
  const button = h("button", { type: "submit" }, buttonText);
  const form = h("form", { "aria-label": label }, controls, button, status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    status.textContent = "Working…";
    try {
      await action();
      app.go("#/org");
    } catch (error) {
      status.replaceChildren(h("span", { class: "error" }, explain(error)));
      button.disabled = false;
    }
  });
  return form;
}

function noOrganisation(app) {
  const name = h("input", { name: "name", required: true, maxlength: 64 });
  const invitation = h("input", { name: "invitationId", required: true, autocomplete: "off" });
  return h("div", {},
    h("h1", {}, "Organisation"),
    h("p", {}, "You are not a member of an organisation."),
    h("section", {}, h("h2", {}, "Create an organisation"),
      actionForm(app, "Create an organisation",
        field("Organisation name", name, "At most 64 characters. You become its admin."),
        "Create organisation",
        () => app.api.call("createOrg", { body: { name: name.value.trim() } }))),
    h("section", {}, h("h2", {}, "Accept an invitation"),
      actionForm(app, "Accept an invitation",
        field("Invitation id", invitation,
          "Paste the id from your invitation (the API cannot list the invitations addressed to you). It must be addressed to the e-mail you signed in with."),
        "Accept invitation",
        () => app.api.call("acceptInvitation", { params: { invitationId: invitation.value.trim() } }))));
}

function roleSelect(name, selected) {
  return h("select", { name }, ROLES.map((role) => h("option", { value: role, selected: role === selected }, role)));
}

function settingsForm(app, org) {
  const name = h("input", { name: "name", required: true, maxlength: 64, value: org.name });
  const regions = h("input", { name: "allowedRegions", value: (org.allowedRegions ?? []).join(", ") });
  const defaultRole = roleSelect("defaultRole", org.defaultRole ?? "viewer");
  return h("details", {}, h("summary", {}, "Edit the organisation"),
    actionForm(app, "Edit the organisation", [
      field("Name", name),
      field("Allowed regions", regions, "Comma-separated AWS regions members may deploy to; empty: every region."),
      field("Default role", defaultRole, "The role of a user whose first SSO sign-in makes them a member."),
    ], "Save", () => {
      const list = regions.value.split(",").map((r) => r.trim()).filter(Boolean);
      return app.api.call("updateOrg", {
        body: { name: name.value.trim(), allowedRegions: list.length ? list : null, defaultRole: defaultRole.value },
      });
    }));
}

/** Every page of a listing (members and invitations stay small; the audit trail pages). */
async function allPages(app, operation, key) {
  const items = [];
  let nextToken = null;
  do {
    const page = await app.api.call(operation, { query: { limit: 100, nextToken } });
    items.push(...page[key]);
    nextToken = page.nextToken;
  } while (nextToken);
  return items;
}

export function clickAction(app, label, text, action, { danger = false, confirmText } = {}) {
  return h("button", {
    type: "button",
    class: danger ? "danger" : "secondary",
    "aria-label": label,
    onclick: async (event) => {
      if (confirmText && !confirm(confirmText)) return;
      const button = event.currentTarget;
      button.disabled = true;
      try {
        await action();
        app.go("#/org");
      } catch (error) {
        app.showError(error);
        button.disabled = false;
      }
    },
  }, text);
}

async function membersSection(app, me, admin) {
  const members = await allPages(app, "listMembers", "members");
  const rows = members.map((member) => {
    const who = member.email ?? member.userId;
    const self = member.userId === me.userId;
    const actions = [];
    if (admin && !self) {
      const role = roleSelect("role", member.role);
      role.setAttribute("aria-label", `Role of ${who}`);
      actions.push(role, clickAction(app, `Change the role of ${who}`, "Change role",
        () => app.api.call("setMemberRole", { params: { userId: member.userId }, body: { role: role.value } })));
      actions.push(clickAction(app, `Remove ${who}`, "Remove",
        () => app.api.call("removeMember", { params: { userId: member.userId } }),
        { danger: true, confirmText: `Remove ${who} from the organisation?` }));
    }
    if (self) {
      actions.push(clickAction(app, "Leave the organisation", "Leave",
        () => app.api.call("removeMember", { params: { userId: member.userId } }),
        { danger: true, confirmText: "Leave the organisation? Only an admin can invite you back." }));
    }
    return h("tr", {}, h("td", {}, who, self ? " (you)" : ""), h("td", {}, member.role),
      h("td", { class: "optional" }, when(member.joinedAt)), h("td", {}, actions));
  });
  return h("section", { "aria-labelledby": "members-heading" }, h("h2", { id: "members-heading" }, "Members"),
    h("table", {}, h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Member"), h("th", { scope: "col" }, "Role"),
      h("th", { scope: "col", class: "optional" }, "Joined"), h("th", { scope: "col" }, "Actions"))),
    h("tbody", {}, rows)));
}

async function invitationsSection(app) {
  const invitations = await allPages(app, "listInvitations", "invitations");
  const email = h("input", { name: "email", type: "email", required: true, maxlength: 320, autocomplete: "off" });
  const role = roleSelect("role", "developer");
  const rows = invitations.map((invitation) => h("tr", {},
    h("td", {}, invitation.email), h("td", {}, invitation.role),
    h("td", {}, h("code", {}, invitation.invitationId)),
    h("td", { class: "optional" }, invitation.expired ? h("span", { class: "error" }, "expired") : when(invitation.expiresAt)),
    h("td", {}, clickAction(app, `Revoke the invitation of ${invitation.email}`, "Revoke",
      () => app.api.call("revokeInvitation", { params: { invitationId: invitation.invitationId } }),
      { danger: true }))));
  return h("section", { "aria-labelledby": "invitations-heading" },
    h("h2", { id: "invitations-heading" }, "Invitations"),
    h("p", { class: "hint" }, "Send the invitation id to the person you invite: they accept it on this screen, signed in with that e-mail."),
    invitations.length
      ? h("table", {}, h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "E-mail"), h("th", { scope: "col" }, "Role"),
        h("th", { scope: "col" }, "Invitation id"), h("th", { scope: "col", class: "optional" }, "Expires"),
        h("th", { scope: "col" }, "Actions"))), h("tbody", {}, rows))
      : h("p", {}, "No pending invitations."),
    actionForm(app, "Invite a member", [field("E-mail address", email, "Their verified e-mail address."), field("Role", role)],
      "Invite", () => app.api.call("createInvitation", { body: { email: email.value.trim(), role: role.value } })));
}

function auditSection(app) {
  const body = h("tbody", {});
  const status = h("p", { role: "status" });
  const more = h("button", { type: "button", class: "secondary" }, "Older events");
  let nextToken = null;
  const load = async () => {
    more.disabled = true;
    try {
      const page = await app.api.call("listOrgAudit", { query: { limit: 25, nextToken } });
      body.append(...page.events.map((event) => h("tr", {},
        h("td", {}, when(event.at)), h("td", {}, event.actorId ?? ""), h("td", {}, event.action ?? ""),
        h("td", { class: "optional" }, event.target ?? ""),
        h("td", {}, event.result ?? "", event.code ? ` (${event.code})` : ""))));
      nextToken = page.nextToken;
      more.hidden = !nextToken;
      status.textContent = body.children.length ? "" : "No events yet.";
    } catch (error) {
      status.replaceChildren(h("span", { class: "error" }, explain(error)));
    } finally {
      more.disabled = false;
    }
  };
  more.addEventListener("click", load);
  load();
  return h("section", { "aria-labelledby": "audit-heading" }, h("h2", { id: "audit-heading" }, "Audit trail"),
    h("table", {}, h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "When"), h("th", { scope: "col" }, "Actor"),
      h("th", { scope: "col" }, "Action"), h("th", { scope: "col", class: "optional" }, "Target"),
      h("th", { scope: "col" }, "Result"))), body),
    status, more);
}
