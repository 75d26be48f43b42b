"""E-mail addresses at sign-up: one normal form, and the domains the platform refuses.

Normal form: surrounding white space trimmed, the whole address lower-cased, the domain
in its ASCII (IDNA) spelling. Nothing else is rewritten: plus-addresses
(`ann+work@example.com`) and dots in the local part are kept, because they are distinct
mailboxes at most providers and merging them would join people who are not the same;
the owner's bill is capped by the platform's ceilings, not by counting addresses.
Cognito compares the e-mail username case-insensitively too, so lower-casing never makes
two users out of one.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from pathlib import Path

from agent_builder.errors import DomainError

BLOCKED_DOMAINS_FILE = Path(__file__).with_name("blocked_email_domains.txt")
MAX_ADDRESS = 254
# No quotes, backslashes or white space: the address goes into a ListUsers filter string.
_ADDRESS = re.compile(r"[^@\s\"\\]{1,64}@[^@\s\"\\]+\.[^@\s\"\\]+")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$")


class SignUpRefused(DomainError):
    """The pre sign-up trigger refuses this sign-up; Cognito shows the message to the user."""

    status = 400
    code = "SIGN_UP_REFUSED"


def normalise(raw: object) -> str:
    """The address in normal form; SignUpRefused when it is missing or not an address."""
    if not isinstance(raw, str) or not raw.strip():
        raise SignUpRefused("an e-mail address is required to sign up")
    address = raw.strip()
    if len(address) > MAX_ADDRESS or not _ADDRESS.fullmatch(address):
        raise SignUpRefused("the e-mail address is not valid")
    local, domain = address.rsplit("@", 1)
    try:
        ascii_domain = domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise SignUpRefused("the e-mail address's domain is not valid") from None
    if not _DOMAIN.fullmatch(ascii_domain):
        raise SignUpRefused("the e-mail address's domain is not valid")
    return f"{local.lower()}@{ascii_domain}"


def domain_of(address: str) -> str:
    return address.rsplit("@", 1)[1]


@functools.cache
def default_blocked_domains() -> frozenset[str]:
    """The list in blocked_email_domains.txt (comments and blank lines skipped)."""
    lines = BLOCKED_DOMAINS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(
        line.strip().lower() for line in lines if line.strip() and not line.startswith("#")
    )


class DomainScreen:
    """Refuses addresses at a blocked domain or any of its subdomains."""

    def __init__(self, extra: Iterable[str] = ()) -> None:
        self._blocked = default_blocked_domains() | {d.strip().lower() for d in extra if d.strip()}

    def is_blocked(self, domain: str) -> bool:
        labels = domain.split(".")
        return any(".".join(labels[i:]) in self._blocked for i in range(len(labels) - 1))

    def check(self, address: str) -> None:
        domain = domain_of(address)
        if self.is_blocked(domain):
            raise SignUpRefused(
                f"e-mail addresses at {domain} cannot sign up (a disposable-mail domain): "
                "use another address"
            )


__all__ = ["DomainScreen", "SignUpRefused", "default_blocked_domains", "domain_of", "normalise"]
