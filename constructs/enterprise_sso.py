"""Tier 3 in the control plane: the KMS key that encrypts what the platform keeps of
members' IAM Identity Center sessions (access tokens, device codes, the organisations'
sso-oidc client secrets), and the API's management of the organisations' SAML IdPs.

IAM Identity Center's device flow (sso-oidc RegisterClient, StartDeviceAuthorization,
CreateToken) and sso:GetRoleCredentials are bearer APIs without SigV4 (botocore's model:
smithy.api#noAuth): no IAM permission exists for them or is granted."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms

from constructs import Construct

# lambda_src/agent_builder/gateways/token_cipher.py (CONTEXT_KEYS) and
# services/sso_sessions.py (the purposes): the encryption context every use carries.
CONTEXT_KEYS = ("purpose", "organizationId", "userId")
PURPOSES = ("sso-access-token", "sso-device-code", "sso-client")


def sso_token_key(
    scope: Construct, construct_id: str, *, prefix: str, removal_policy: RemovalPolicy
) -> kms.Key:
    """A symmetric key with yearly rotation; its policy is the account's default (so the
    account's administrators keep control of it) plus what `grant_token_use` adds."""
    return kms.Key(
        scope,
        construct_id,
        description=f"{prefix}: encrypts stored IAM Identity Center tokens of members",
        enable_key_rotation=True,
        rotation_period=Duration.days(365),
        removal_policy=removal_policy,
        pending_window=Duration.days(7),
    )


def grant_token_use(key: kms.Key, roles: Sequence[iam.IRole]) -> None:
    """kms:Encrypt and kms:Decrypt for `roles`, in the key policy, only with the context
    that binds a ciphertext to its purpose, organisation and member: no other context
    key, each of the three present, and the purpose one of the platform's."""
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="ApiEncryptsSsoSecretsForOneMember",
            principals=[iam.ArnPrincipal(role.role_arn) for role in roles],
            actions=["kms:Encrypt", "kms:Decrypt"],
            # In a key policy, "*" is this key and nothing else.
            resources=["*"],
            conditions={
                "StringEquals": {"kms:EncryptionContext:purpose": list(PURPOSES)},
                "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": list(CONTEXT_KEYS)},
                "Null": {f"kms:EncryptionContext:{name}": "false" for name in CONTEXT_KEYS},
            },
        )
    )


# What gateways/saml_providers.py calls: the IdPs, and the web client it reads and writes.
IDENTITY_PROVIDER_ACTIONS = (
    "cognito-idp:CreateIdentityProvider",
    "cognito-idp:UpdateIdentityProvider",
    "cognito-idp:DeleteIdentityProvider",
    "cognito-idp:DescribeIdentityProvider",
    "cognito-idp:ListIdentityProviders",
    "cognito-idp:DescribeUserPoolClient",
    "cognito-idp:UpdateUserPoolClient",
)


def grant_identity_providers(grantee: iam.IGrantable, user_pool: cognito.IUserPool) -> None:
    """The organisations' SAML IdPs in this user pool, nothing in any other pool."""
    iam.Grant.add_to_principal(
        grantee=grantee,
        actions=list(IDENTITY_PROVIDER_ACTIONS),
        resource_arns=[user_pool.user_pool_arn],
    )


__all__ = [
    "CONTEXT_KEYS",
    "IDENTITY_PROVIDER_ACTIONS",
    "PURPOSES",
    "grant_identity_providers",
    "grant_token_use",
    "sso_token_key",
]
