"""SAML metadata and IAM Identity Center answers for the enterprise SSO tests."""

from __future__ import annotations

import base64
import functools
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

IDP_ENTITY = "https://portal.sso.us-east-1.amazonaws.com/saml/assertion/MDEyMzQ1Njc4OTAx"
SSO_URL = "https://portal.sso.us-east-1.amazonaws.com/saml/assertion/MDEyMzQ1Njc4OTAx"
START_URL = "https://d-1234567890.awsapps.com/start"
ORG = "0f0e0d0c-0000-4000-8000-0000000000a1"
OTHER_ORG = "0f0e0d0c-0000-4000-8000-0000000000b2"


@functools.cache
def certificate_b64(days: int = 365) -> str:
    """A self-signed certificate valid from yesterday for `days` (negative: expired)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "idp.example.com")])
    start = datetime.now(UTC) - timedelta(days=400 if days < 0 else 1)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(datetime.now(UTC) + timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    return base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode()


def metadata_xml(
    *,
    certificate: str | None = None,
    sso_url: str = SSO_URL,
    binding: str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect",
    with_sso: bool = True,
    with_key: bool = True,
    idp: bool = True,
) -> str:
    cert = certificate if certificate is not None else certificate_b64()
    key = (
        '<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data>'
        f"<ds:X509Certificate>{cert}</ds:X509Certificate>"
        "</ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
        if with_key
        else ""
    )
    sso = f'<md:SingleSignOnService Binding="{binding}" Location="{sso_url}"/>' if with_sso else ""
    role = "IDPSSODescriptor" if idp else "SPSSODescriptor"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
        f'xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{IDP_ENTITY}">'
        f'<md:{role} protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
        f"{key}{sso}</md:{role}></md:EntityDescriptor>"
    )


# ---- an organisation's IAM Identity Center settings and a member's session ------------------

PERMISSION_SET_ROLE = "AgentBuilderDeployer"
SSO_TOKEN = "aoa-SECRET-sso-access-token-0123456789"


def configure_sso(
    dynamodb: Any, table: str, organization_id: str, *, account_id: str, sso_region: str
) -> None:
    """The SSO settings PUT /org/sso stores (the IdP itself is not needed here)."""
    from agent_builder import timeutil
    from agent_builder.repositories.sso import SsoRepository

    SsoRepository(dynamodb, table).save_settings(
        organization_id,
        {
            "providerName": f"org-{organization_id}",
            "emailDomains": ["example.com"],
            "startUrl": START_URL,
            "ssoRegion": sso_region,
            "accountId": account_id,
            "permissionSetRole": PERMISSION_SET_ROLE,
        },
        previous=None,
        now_iso=timeutil.iso(datetime.now(UTC)),
    )


def start_session(
    dynamodb: Any,
    table: str,
    kms: Any,
    key: str,
    organization_id: str,
    user: str,
    *,
    sso_region: str,
    expires_in: int = 3600,
) -> None:
    """An active IAM Identity Center session of `user`, as the device flow leaves it."""
    from agent_builder.gateways.token_cipher import TokenCipher
    from agent_builder.repositories.sso import SsoRepository

    SsoRepository(dynamodb, table).put_session(
        user,
        {
            "organizationId": organization_id,
            "status": "active",
            "ssoRegion": sso_region,
            "accessToken": TokenCipher(kms, key).encrypt(
                SSO_TOKEN,
                purpose="sso-access-token",
                organization_id=organization_id,
                user_id=user,
            ),
            "expiresAt": int(datetime.now(UTC).timestamp()) + expires_in,
        },
    )


def role_credentials(credentials: Mapping[str, Any]) -> dict[str, Any]:
    """GetRoleCredentials' answer carrying `credentials` (STS-shaped: moto maps an access
    key it issued to that role's account)."""
    return {
        "roleCredentials": {
            "accessKeyId": credentials["AccessKeyId"],
            "secretAccessKey": credentials["SecretAccessKey"],
            "sessionToken": credentials["SessionToken"],
            "expiration": int(datetime.now(UTC).timestamp() + 3600) * 1000,
        }
    }
