"""What makes SAML metadata usable as an organisation's IdP: parsed safely, then checked.

The document comes from an admin (pasted, or fetched from the URL they gave), so it is
parsed with the standard library's expat with every DTD refused: SAML metadata never
needs one, and refusing it rules out entity expansion ("billion laughs") and external
entities (defusedxml is not in the Lambda runtime; this is its `forbid_dtd` rule). Then it
must describe exactly one IdP (IDPSSODescriptor for SAML 2.0) with a signing certificate
that parses and has not expired, and a SingleSignOnService on https with a binding
Cognito uses (HTTP-Redirect or HTTP-POST). Every refusal is InvalidSsoConfig (422) saying
what is wrong.
"""

from __future__ import annotations

import base64
import binascii
import xml.etree.ElementTree as ET
import xml.parsers.expat
from dataclasses import dataclass
from datetime import datetime

from agent_builder.errors import InvalidSsoConfig

MAX_METADATA_BYTES = 512 * 1024
MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"
SAML2_PROTOCOL = "urn:oasis:names:tc:SAML:2.0:protocol"
BINDINGS = (
    "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect",
    "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST",
)


@dataclass(frozen=True)
class IdpMetadata:
    entity_id: str
    sso_url: str
    certificate_expires_at: datetime | None


class _Refused(Exception):
    pass


def _refuse_dtd(*_: object) -> None:
    raise _Refused()


def _screen(document: bytes) -> None:
    """Parse once with expat, refusing any DTD or entity declaration."""
    parser = xml.parsers.expat.ParserCreate(namespace_separator=" ")
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    parser.UnparsedEntityDeclHandler = _refuse_dtd
    parser.ExternalEntityRefHandler = _refuse_dtd  # type: ignore[assignment]
    try:
        parser.Parse(document, True)
    except _Refused:
        raise InvalidSsoConfig(
            "the SAML metadata declares a DTD or entities; metadata needs neither: remove them"
        ) from None
    except xml.parsers.expat.ExpatError as exc:
        raise InvalidSsoConfig(f"the SAML metadata is not well-formed XML: {exc}") from None


def parse_metadata(document: bytes | str, *, now: datetime) -> IdpMetadata:
    """The IdP the metadata describes; InvalidSsoConfig saying what is missing."""
    raw = document.encode() if isinstance(document, str) else document
    if not raw.strip():
        raise InvalidSsoConfig("the SAML metadata is empty")
    if len(raw) > MAX_METADATA_BYTES:
        raise InvalidSsoConfig(f"the SAML metadata is larger than {MAX_METADATA_BYTES // 1024} KiB")
    _screen(raw)
    # Safe now: _screen refused any DTD, so no entity can be declared or expanded.
    root = ET.fromstring(raw)  # noqa: S314
    if root.tag == f"{{{MD}}}EntitiesDescriptor":
        entities = [e for e in root.findall(f"{{{MD}}}EntityDescriptor") if _idp(e) is not None]
        if len(entities) != 1:
            raise InvalidSsoConfig(
                "the SAML metadata must describe exactly one identity provider "
                f"(found {len(entities)} with an IDPSSODescriptor)"
            )
        entity = entities[0]
    elif root.tag == f"{{{MD}}}EntityDescriptor":
        entity = root
    else:
        raise InvalidSsoConfig(
            "the document is not SAML 2.0 metadata (its root must be an md:EntityDescriptor)"
        )
    entity_id = (entity.get("entityID") or "").strip()
    if not entity_id:
        raise InvalidSsoConfig("the EntityDescriptor has no entityID")
    idp = _idp(entity)
    if idp is None:
        raise InvalidSsoConfig(
            "the metadata has no IDPSSODescriptor for SAML 2.0: is it the identity "
            "provider's metadata (IAM Identity Center: the application's 'IAM Identity "
            "Center SAML metadata file')?"
        )
    expires = _signing_certificate(idp, now)
    return IdpMetadata(entity_id=entity_id, sso_url=_sso_url(idp), certificate_expires_at=expires)


def _idp(entity: ET.Element) -> ET.Element | None:
    for descriptor in entity.findall(f"{{{MD}}}IDPSSODescriptor"):
        if SAML2_PROTOCOL in (descriptor.get("protocolSupportEnumeration") or "").split():
            return descriptor
    return None


def _signing_certificate(idp: ET.Element, now: datetime) -> datetime | None:
    """The latest expiry of the IdP's signing certificates (None when `cryptography`, which
    the Lambda runtime lacks, cannot read it: then only the DER structure is checked and
    Cognito's own parse of the metadata is the last word)."""
    found = 0
    usable: list[bytes] = []
    for key in idp.findall(f"{{{MD}}}KeyDescriptor"):
        if key.get("use") not in (None, "signing"):
            continue
        for element in key.iter(f"{{{DS}}}X509Certificate"):
            found += 1
            text = "".join((element.text or "").split())
            try:
                der = base64.b64decode(text, validate=True)
            except (binascii.Error, ValueError):
                continue
            if len(der) > 64 and der[0] == 0x30:  # a DER SEQUENCE, as every certificate
                usable.append(der)
    if not usable:
        raise InvalidSsoConfig(
            "the IDPSSODescriptor has no signing certificate"
            + (" that parses (ds:X509Certificate must be base64 DER)" if found else "")
        )
    try:
        from cryptography import x509
    except ImportError:
        return None
    newest: datetime | None = None
    for der in usable:
        try:
            expires = x509.load_der_x509_certificate(der).not_valid_after_utc
        except ValueError:
            continue
        if newest is None or expires > newest:
            newest = expires
    if newest is None:
        raise InvalidSsoConfig("the IdP's signing certificate is not a valid X.509 certificate")
    if newest <= now:
        raise InvalidSsoConfig(
            f"the IdP's signing certificate expired on {newest.date().isoformat()}: "
            "download the metadata again after renewing it"
        )
    return newest


def _sso_url(idp: ET.Element) -> str:
    services = idp.findall(f"{{{MD}}}SingleSignOnService")
    usable = [s for s in services if s.get("Binding") in BINDINGS]
    if not usable:
        raise InvalidSsoConfig(
            "the IDPSSODescriptor has no SingleSignOnService with the HTTP-Redirect or "
            "HTTP-POST binding"
        )
    for service in usable:
        location = (service.get("Location") or "").strip()
        if location.startswith("https://"):
            return location
    raise InvalidSsoConfig("the IdP's SingleSignOnService Location must be an https:// URL")


__all__ = ["MAX_METADATA_BYTES", "IdpMetadata", "parse_metadata"]
