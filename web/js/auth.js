// Signing in. In AWS: Cognito's hosted sign-in page with authorization code + PKCE, the
// refresh token to renew, revocation and the hosted logout to sign out. In local mode:
// POST /_local/sign-in with an e-mail and a provider. Either way the API gets the ACCESS
// token only (the authorizer refuses ID tokens). Tokens live in sessionStorage: this tab.

const KEY = "agent-builder.session";
const PENDING = "agent-builder.pkce";
const REFRESH_MARGIN_MS = 60_000;

export class Session {
  constructor(config, storage = sessionStorage) {
    this.config = config;
    this.storage = storage;
    this.listeners = [];
    this.state = JSON.parse(storage.getItem(KEY) ?? "null");
  }

  get signedIn() {
    return Boolean(this.state?.accessToken);
  }

  get who() {
    return this.state?.email ?? null;
  }

  token() {
    return this.state?.accessToken ?? null;
  }

  onChange(listener) {
    this.listeners.push(listener);
  }

  save(state) {
    this.state = state;
    if (state) this.storage.setItem(KEY, JSON.stringify(state));
    else this.storage.removeItem(KEY);
    for (const listener of this.listeners) listener(this.signedIn);
  }

  /** Local mode: a real emulator-signed token for this e-mail and provider. */
  async signInLocally(email, provider) {
    const body = { email };
    if (provider && provider !== "email") body.provider = provider;
    const response = await fetch(`${this.config.apiUrl}/_local/sign-in`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    const document = await response.json().catch(() => ({}));
    if (!response.ok) {
      throw new Error(document?.error?.message ?? document?.message ?? `sign-in failed (HTTP ${response.status})`);
    }
    this.save({
      accessToken: document.accessToken,
      expiresAt: Date.now() + (document.expiresIn ?? 3600) * 1000,
      email,
      provider: body.provider ?? "email",
    });
  }

  /** AWS: to the hosted sign-in page, with a PKCE challenge and a state to check on return. */
  async beginHostedSignIn(identityProvider) {
    const { domain, clientId, scopes } = this.config.cognito;
    const verifier = randomText(48);
    const state = randomText(24);
    this.storage.setItem(PENDING, JSON.stringify({ verifier, state }));
    const query = new URLSearchParams({
      response_type: "code",
      client_id: clientId,
      redirect_uri: redirectUri(),
      scope: scopes.join(" "),
      state,
      code_challenge: await challenge(verifier),
      code_challenge_method: "S256",
    });
    if (identityProvider) query.set("identity_provider", identityProvider);
    location.assign(`${domain}/oauth2/authorize?${query}`);
  }

  /** Back from the hosted page with ?code=&state=: exchange the code. True if it did. */
  async completeHostedSignIn() {
    const query = new URLSearchParams(location.search);
    if (!query.has("code") && !query.has("error")) return false;
    history.replaceState(null, "", location.pathname + location.hash);
    const pending = JSON.parse(this.storage.getItem(PENDING) ?? "null");
    this.storage.removeItem(PENDING);
    if (query.has("error")) throw new Error(`sign-in refused: ${query.get("error_description") ?? query.get("error")}`);
    if (!pending || pending.state !== query.get("state")) {
      throw new Error("sign-in answer does not match the request this tab made: sign in again");
    }
    const tokens = await this.tokenRequest({
      grant_type: "authorization_code",
      code: query.get("code"),
      redirect_uri: redirectUri(),
      code_verifier: pending.verifier,
    });
    this.saveTokens(tokens, tokens.refresh_token);
    return true;
  }

  /** A new access token before (or after) this one expires. False when it cannot. */
  async refresh() {
    if (!this.state) return false;
    try {
      if (this.config.mode === "local") {
        await this.signInLocally(this.state.email, this.state.provider);
      } else {
        if (!this.state.refreshToken) return false;
        const tokens = await this.tokenRequest({ grant_type: "refresh_token", refresh_token: this.state.refreshToken });
        this.saveTokens(tokens, this.state.refreshToken);
      }
      return true;
    } catch {
      return false;
    }
  }

  /** Renew a token that expires within a minute; call before each screen loads. */
  async fresh() {
    if (this.signedIn && this.state.expiresAt - Date.now() < REFRESH_MARGIN_MS) await this.refresh();
  }

  async signOut() {
    const state = this.state;
    this.save(null);
    if (this.config.mode === "local" || !state) return;
    const { domain, clientId } = this.config.cognito;
    if (state.refreshToken) {
      await fetch(`${domain}/oauth2/revoke`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ token: state.refreshToken, client_id: clientId }),
      }).catch(() => undefined);
    }
    location.assign(`${domain}/logout?${new URLSearchParams({ client_id: clientId, logout_uri: redirectUri() })}`);
  }

  async tokenRequest(fields) {
    const { domain, clientId } = this.config.cognito;
    const response = await fetch(`${domain}/oauth2/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ ...fields, client_id: clientId }),
    });
    const document = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(`sign-in: ${document.error_description ?? document.error ?? response.status}`);
    return document;
  }

  saveTokens(tokens, refreshToken) {
    this.save({
      accessToken: tokens.access_token,
      refreshToken,
      expiresAt: Date.now() + (tokens.expires_in ?? 3600) * 1000,
      email: emailFrom(tokens.id_token) ?? this.state?.email ?? null,
    });
  }
}

function redirectUri() {
  return `${location.origin}/`;
}

function randomText(bytes) {
  return base64Url(crypto.getRandomValues(new Uint8Array(bytes)));
}

async function challenge(verifier) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64Url(new Uint8Array(digest));
}

function base64Url(bytes) {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** The e-mail to show in the header: read (not trusted) from the ID token's payload. */
function emailFrom(idToken) {
  try {
    const payload = idToken.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload)).email ?? null;
  } catch {
    return null;
  }
}
