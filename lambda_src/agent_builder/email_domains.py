"""An organisation's e-mail domains: what Cognito routes to its SAML IdP.

A domain is lower-cased, without a trailing dot, made of DNS labels (letters, digits,
hyphens; 1-63 characters; not starting or ending with a hyphen), with an alphabetic top
level of at least two letters or an IDNA `xn--` one; at most 40 characters (Cognito's
limit for an IdP identifier) and at most MAX_DOMAINS of them. Public webmail domains are
refused: claiming gmail.com would route every Gmail user of the platform to one
company's IdP, and nobody can prove they own it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from agent_builder.errors import InvalidInput

MAX_DOMAINS = 20
MAX_DOMAIN_LENGTH = 40  # Cognito IdpIdentifiers: 1-40 characters each
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
DOMAIN = re.compile(rf"^(?:{_LABEL}\.)+(?:[a-z]{{2,63}}|xn--[a-z0-9-]{{2,59}})$")
# Mail services anyone can sign up to. Not exhaustive: the point is that the big ones
# (and their country variants) are refused with a clear message.
PUBLIC_MAIL_DOMAINS = frozenset(
    {
        "aol.com",
        "fastmail.com",
        "gmail.com",
        "gmx.com",
        "gmx.de",
        "gmx.net",
        "googlemail.com",
        "hey.com",
        "hotmail.com",
        "hotmail.co.uk",
        "hotmail.fr",
        "icloud.com",
        "live.com",
        "mac.com",
        "mail.com",
        "mail.ru",
        "me.com",
        "msn.com",
        "outlook.com",
        "pm.me",
        "proton.me",
        "protonmail.com",
        "qq.com",
        "tutanota.com",
        "web.de",
        "yahoo.com",
        "yahoo.co.uk",
        "yahoo.fr",
        "yandex.com",
        "yandex.ru",
        "zoho.com",
    }
)


def normalise_domain(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidInput("emailDomains must be a list of domain names")
    domain = value.strip().lower().rstrip(".")
    if domain.startswith("@"):
        domain = domain[1:]
    if not DOMAIN.match(domain):
        raise InvalidInput(f"{value!r} is not a domain name like example.com")
    if len(domain) > MAX_DOMAIN_LENGTH:
        raise InvalidInput(
            f"{domain} is longer than {MAX_DOMAIN_LENGTH} characters (Cognito's limit for "
            "an identity provider identifier)"
        )
    if domain in PUBLIC_MAIL_DOMAINS:
        raise InvalidInput(
            f"{domain} is a public mail service: an organisation can claim only domains it owns"
        )
    return domain


def normalise_domains(values: object) -> tuple[str, ...]:
    """The organisation's domains, normalised, de-duplicated, in the order given."""
    if not isinstance(values, list | tuple) or not values:
        raise InvalidInput('emailDomains must list at least one domain, e.g. ["example.com"]')
    if len(values) > MAX_DOMAINS:
        raise InvalidInput(f"emailDomains lists at most {MAX_DOMAINS} domains")
    seen: dict[str, None] = {}
    for value in values:
        seen.setdefault(normalise_domain(value), None)
    return tuple(seen)


def domain_of(email: str) -> str:
    return email.rsplit("@", 1)[-1].strip().lower().rstrip(".")


def covers(domains: Iterable[str], email: str) -> bool:
    """True if the address is in one of the domains (exactly: sub-domains are not)."""
    return domain_of(email) in set(domains)


__all__ = [
    "MAX_DOMAINS",
    "PUBLIC_MAIL_DOMAINS",
    "covers",
    "domain_of",
    "normalise_domain",
    "normalise_domains",
]
