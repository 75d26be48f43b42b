"""Secrets the platform keeps for a member (an IAM Identity Center access token, the
device code that becomes one, the organisation's sso-oidc client secret), encrypted with
the platform's KMS key for them.

Direct kms:Encrypt / kms:Decrypt (each value is far below KMS's 4 KiB limit), with an
encryption context that binds the ciphertext to its purpose, organisation and user: a
ciphertext copied onto another member's item does not decrypt, and the key policy lets
the API function use the key only with that context (stacks/control_plane_stack.py).
Plaintexts never reach a log line.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

from agent_builder.errors import SsoNotConfigured

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient

# The context keys the key policy requires (kms:EncryptionContextKeys).
CONTEXT_KEYS = ("purpose", "organizationId", "userId")


class TokenCipher:
    """`key_id` empty: the owner left IAM Identity Center sessions off (cdk.json
    `enterpriseSso`, whose KMS key costs $1 a month): nothing is encrypted or stored, and
    the member is told why (409 SSO_NOT_CONFIGURED)."""

    def __init__(self, client: KMSClient, key_id: str) -> None:
        self._kms = client
        self._key = key_id

    def require_key(self) -> None:
        """Refuse (409 SSO_NOT_CONFIGURED) when sessions are off: before any AWS call."""
        if not self._key:
            raise SsoNotConfigured(
                "IAM Identity Center sessions are turned off on this platform: its owner "
                "turns them on with enterpriseSso=true (docs/enterprise.md)"
            )

    @staticmethod
    def context(purpose: str, organization_id: str, user_id: str) -> dict[str, str]:
        return {"purpose": purpose, "organizationId": organization_id, "userId": user_id}

    def encrypt(self, plaintext: str, *, purpose: str, organization_id: str, user_id: str) -> str:
        self.require_key()
        answer = self._kms.encrypt(
            KeyId=self._key,
            Plaintext=plaintext.encode(),
            EncryptionContext=self.context(purpose, organization_id, user_id),
        )
        return base64.b64encode(answer["CiphertextBlob"]).decode()

    def decrypt(self, ciphertext: str, *, purpose: str, organization_id: str, user_id: str) -> str:
        self.require_key()
        answer = self._kms.decrypt(
            KeyId=self._key,
            CiphertextBlob=base64.b64decode(ciphertext),
            EncryptionContext=self.context(purpose, organization_id, user_id),
        )
        return bytes(answer["Plaintext"]).decode()


__all__ = ["CONTEXT_KEYS", "TokenCipher"]
