// The HTTP API client. Every call goes through OPERATIONS, which tests/web checks against
// dist/openapi.json (method, path, query parameters, body fields): a screen never invents
// a route or a field.

export const OPERATIONS = Object.freeze({
  getMe: { method: "GET", path: "/me" },
  listAgents: { method: "GET", path: "/agents", query: ["nextToken", "limit"] },
  createAgent: {
    method: "POST",
    path: "/agents",
    body: ["name", "model", "instructions", "parameters"],
    parameters: ["temperature", "maxTokens"],
  },
  getAgent: { method: "GET", path: "/agents/{agentId}" },
  deleteAgent: { method: "DELETE", path: "/agents/{agentId}" },
  startTest: { method: "POST", path: "/agents/{agentId}/tests", body: ["input"], idempotent: true },
  startDeployment: {
    method: "POST",
    path: "/agents/{agentId}/deployments",
    // accountId and region: an organisation's deployments only (which account, which region).
    body: ["input", "accountId", "region"],
    idempotent: true,
  },
  listRuns: { method: "GET", path: "/runs", query: ["nextToken", "limit"] },
  getRun: { method: "GET", path: "/runs/{runId}" },
  getRunLogs: { method: "GET", path: "/runs/{runId}/logs", query: ["nextToken", "limit"] },
  startOnboarding: { method: "POST", path: "/aws-account/onboarding", body: ["region", "rotate"] },
  getAccount: { method: "GET", path: "/aws-account" },
  disconnectAccount: { method: "DELETE", path: "/aws-account" },
  createOrg: { method: "POST", path: "/org", body: ["name"] },
  getOrg: { method: "GET", path: "/org" },
  updateOrg: { method: "PATCH", path: "/org", body: ["name", "allowedRegions", "defaultRole"] },
  listMembers: { method: "GET", path: "/org/members", query: ["nextToken", "limit"] },
  setMemberRole: { method: "PUT", path: "/org/members/{userId}", body: ["role"] },
  removeMember: { method: "DELETE", path: "/org/members/{userId}" },
  createInvitation: { method: "POST", path: "/org/invitations", body: ["email", "role"] },
  listInvitations: { method: "GET", path: "/org/invitations", query: ["nextToken", "limit"] },
  revokeInvitation: { method: "DELETE", path: "/org/invitations/{invitationId}" },
  acceptInvitation: { method: "POST", path: "/org/invitations/{invitationId}/accept" },
  listOrgAudit: { method: "GET", path: "/org/audit", query: ["nextToken", "limit"] },
  configureSso: {
    method: "PUT",
    path: "/org/sso",
    body: ["samlMetadataUrl", "samlMetadataXml", "emailDomains", "startUrl", "ssoRegion", "accountId", "permissionSetRole"],
  },
  removeSso: { method: "DELETE", path: "/org/sso" },
  startSsoSession: { method: "POST", path: "/org/sso/device-authorization" },
  getSsoSession: { method: "GET", path: "/org/sso/session" },
  endSsoSession: { method: "DELETE", path: "/org/sso/session" },
  startOrgOnboarding: { method: "POST", path: "/org/accounts/onboarding", body: ["region", "rotate"] },
  listOrgAccounts: { method: "GET", path: "/org/accounts" },
  disconnectOrgAccount: { method: "DELETE", path: "/org/accounts/{accountId}" },
});

/** An answer other than 2xx, with what the API said and when to retry. */
export class ApiError extends Error {
  constructor(status, code, message, retryAfter) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter; // seconds, or null
  }
}

/** A fresh Idempotency-Key: one per click, so a double click is one run. */
export function idempotencyKey() {
  return `console-${crypto.randomUUID()}`;
}

export class ApiClient {
  /**
   * @param {string} baseUrl the API's origin (no trailing slash)
   * @param {{token: () => string|null, refresh: () => Promise<boolean>, signedOut: () => void}} session
   * @param {typeof fetch} fetcher
   */
  constructor(baseUrl, session, fetcher = (...args) => fetch(...args)) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.session = session;
    this.fetcher = fetcher;
  }

  /** Call OPERATIONS[name] with path parameters, query, body and an Idempotency-Key. */
  async call(name, { params = {}, query = {}, body, idempotencyKey: key } = {}) {
    const operation = OPERATIONS[name];
    if (!operation) throw new Error(`unknown API operation ${name}`);
    const url = this.baseUrl + buildPath(operation, params) + buildQuery(operation, query);
    const headers = { accept: "application/json" };
    const init = { method: operation.method, headers };
    if (operation.body) {
      init.body = JSON.stringify(checkBody(name, operation, body ?? {}));
      headers["content-type"] = "application/json";
    }
    if (operation.idempotent && key) headers["idempotency-key"] = key;
    let response = await this.send(url, init);
    if (response.status === 401 && (await this.session.refresh())) {
      response = await this.send(url, init);
    }
    if (response.status === 401) {
      this.session.signedOut();
      throw new ApiError(401, "UNAUTHENTICATED", "Your session has ended: sign in again.", null);
    }
    return readAnswer(response);
  }

  async send(url, init) {
    const token = this.session.token();
    const headers = token ? { ...init.headers, authorization: `Bearer ${token}` } : init.headers;
    try {
      return await this.fetcher(url, { ...init, headers });
    } catch (error) {
      throw new ApiError(0, "NETWORK", `The API at ${this.baseUrl} cannot be reached (${error.message}).`, null);
    }
  }
}

function buildPath(operation, params) {
  return operation.path.replace(/\{(\w+)\}/g, (_, key) => {
    if (params[key] === undefined) throw new Error(`${operation.path}: ${key} is required`);
    return encodeURIComponent(params[key]);
  });
}

function buildQuery(operation, query) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined || value === null) continue;
    if (!(operation.query ?? []).includes(key)) throw new Error(`${operation.path}: no query ${key}`);
    search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

function checkBody(name, operation, body) {
  const unknown = Object.keys(body).filter((key) => !operation.body.includes(key));
  if (unknown.length) throw new Error(`${name}: undocumented body fields ${unknown.join(", ")}`);
  return body;
}

async function readAnswer(response) {
  const text = await response.text();
  let document = null;
  if (text) {
    try {
      document = JSON.parse(text);
    } catch {
      document = null;
    }
  }
  if (response.ok) return document;
  const retry = Number.parseInt(response.headers.get("retry-after") ?? "", 10);
  const error = document?.error;
  const message = error?.message ?? document?.message ?? (text || response.statusText || "no message");
  throw new ApiError(
    response.status,
    error?.code ?? `HTTP_${response.status}`,
    message,
    Number.isFinite(retry) ? retry : null,
  );
}

/** What an error means to the person who clicked, and when to try again. */
export function explain(error) {
  if (!(error instanceof ApiError)) return `Something went wrong in the console: ${error.message}`;
  const retry = error.retryAfter ? ` Try again ${inSeconds(error.retryAfter)}.` : "";
  switch (error.code) {
    case "QUOTA_EXCEEDED":
      return `You have used this month's free tests.${retry || " They come back next month."} (${error.message})`;
    case "RATE_LIMITED":
      return `Too many launches in a short time.${retry} (${error.message})`;
    case "CAPACITY_EXHAUSTED":
      return `The platform is running as many tests as it allows at once; yours was not started or counted.${retry} (${error.message})`;
    case "FREE_TIER_PAUSED":
      return `The free tier is paused: the platform's monthly budget is spent. Nothing was charged.${retry} (${error.message})`;
    default:
      return `${error.message}${retry} (${error.code}, HTTP ${error.status})`;
  }
}

export function inSeconds(seconds) {
  if (seconds < 90) return `in ${seconds} s`;
  if (seconds < 5400) return `in ${Math.round(seconds / 60)} min`;
  if (seconds < 172800) return `in ${Math.round(seconds / 3600)} h`;
  const at = new Date(Date.now() + seconds * 1000);
  return `after ${at.toLocaleString()}`;
}
