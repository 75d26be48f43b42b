"""ID tokens signed by KMS (RS256: RSASSA_PKCS1_V1_5_SHA_256), and
the JWKS derived from the key's public half (kms:GetPublicKey), read once per execution
environment.

No private key exists outside KMS. The public key arrives as DER SubjectPublicKeyInfo;
its two integers are read here with a few lines of DER rather than a cryptography
package the Lambda runtime does not have (tests check the result with `cryptography`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Mapping
from typing import Any

ALGORITHM = "RS256"
KMS_ALGORITHM = "RSASSA_PKCS1_V1_5_SHA_256"
RAW_MESSAGE_LIMIT = 4096


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int_bytes(value: bytes) -> bytes:
    return value.lstrip(b"\x00") or b"\x00"


def _tlv(data: bytes, offset: int) -> tuple[int, bytes, int]:
    """One DER element at `offset`: its tag, its content, and the offset after it."""
    tag = data[offset]
    length = data[offset + 1]
    offset += 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[offset : offset + count], "big")
        offset += count
    return tag, data[offset : offset + length], offset + length


_SEQUENCE, _INTEGER, _BIT_STRING = 0x30, 0x02, 0x03
_RSA_ENCRYPTION_OID = bytes.fromhex("2a864886f70d010101")


def rsa_public_numbers(spki_der: bytes) -> tuple[bytes, bytes]:
    """(modulus, exponent) as big-endian bytes from an RSA SubjectPublicKeyInfo."""
    tag, spki, _ = _tlv(spki_der, 0)
    if tag != _SEQUENCE:
        raise ValueError("not a SubjectPublicKeyInfo")
    tag, algorithm, after = _tlv(spki, 0)
    if tag != _SEQUENCE or _tlv(algorithm, 0)[1] != _RSA_ENCRYPTION_OID:
        raise ValueError("not an RSA public key")
    tag, bits, _ = _tlv(spki, after)
    if tag != _BIT_STRING or bits[:1] != b"\x00":
        raise ValueError("malformed public key bit string")
    tag, key, _ = _tlv(bits, 1)
    tag_n, modulus, after = _tlv(key, 0)
    tag_e, exponent, _ = _tlv(key, after)
    if tag != _SEQUENCE or tag_n != _INTEGER or tag_e != _INTEGER:
        raise ValueError("malformed RSA public key")
    return _int_bytes(modulus), _int_bytes(exponent)


class KmsSigner:
    def __init__(self, kms: Any, key_id: str) -> None:
        self._kms = kms
        self._key_id = key_id
        self._jwk: dict[str, str] | None = None
        self._lock = threading.Lock()

    def jwk(self) -> dict[str, str]:
        """The public key as a JWK; its `kid` is the RFC 7638 thumbprint."""
        with self._lock:
            if self._jwk is None:
                der = self._kms.get_public_key(KeyId=self._key_id)["PublicKey"]
                modulus, exponent = rsa_public_numbers(der)
                n, e = b64url(modulus), b64url(exponent)
                members = json.dumps({"e": e, "kty": "RSA", "n": n}, separators=(",", ":"))
                kid = b64url(hashlib.sha256(members.encode()).digest())
                self._jwk = {
                    "kty": "RSA",
                    "use": "sig",
                    "alg": ALGORITHM,
                    "kid": kid,
                    "n": n,
                    "e": e,
                }
            return dict(self._jwk)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.jwk()]}

    def sign_jwt(self, claims: Mapping[str, Any]) -> str:
        header = {"alg": ALGORITHM, "typ": "JWT", "kid": self.jwk()["kid"]}
        signing_input = ".".join(
            b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
        )
        message = signing_input.encode()
        # KMS hashes a RAW message itself (up to 4096 bytes: every ID token here); a longer
        # one goes as its SHA-256 digest, which KMS signs the same way.
        raw = len(message) <= RAW_MESSAGE_LIMIT
        signature = self._kms.sign(
            KeyId=self._key_id,
            Message=message if raw else hashlib.sha256(message).digest(),
            MessageType="RAW" if raw else "DIGEST",
            SigningAlgorithm=KMS_ALGORITHM,
        )["Signature"]
        return f"{signing_input}.{b64url(signature)}"
