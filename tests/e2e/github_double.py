"""`python -m tests.e2e.github_double`: local mode with a `github` claims provider that
stands in for the OIDC bridge (a test double: a stable subject per address; addresses at
unverified.example are sent with email_verified false, as GitHub's unverified e-mails)."""

from __future__ import annotations

import hashlib
import sys
from typing import Any

from local_mode.__main__ import main


def github_claims(email: str) -> dict[str, Any]:
    address = email.strip().lower()
    return {
        "sub": str(int(hashlib.sha256(address.encode()).hexdigest()[:8], 16)),
        "email": address,
        "email_verified": not address.endswith("@unverified.example"),
        "name": address.split("@", 1)[0],
        "picture": "https://avatars.githubusercontent.com/u/1",
    }


if __name__ == "__main__":
    sys.exit(main(claims_providers={"github": github_claims}))
