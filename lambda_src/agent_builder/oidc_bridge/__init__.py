"""GitHub sign-in through an OIDC bridge of ours (Cognito has no GitHub provider, and
GitHub speaks OAuth2, not OIDC).

Cognito's OIDC identity provider `GitHub` talks to this bridge as to any OIDC provider;
the bridge sends the browser on to GitHub, exchanges GitHub's code itself, and mints an
ID token signed by a KMS key (no private key exists outside KMS). Modules: `errors`
(OAuth2 error answers), `agent_builder.repositories.bridge_grants` (the one-time
state, code and access-token records),
`github` (GitHub's OAuth and REST endpoints), `signing` (KMS signatures and the JWKS),
`service` (the protocol itself).
"""
