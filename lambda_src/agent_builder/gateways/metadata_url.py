"""Fetching an admin's SAML metadata URL without becoming an SSRF relay.

The API function fetches a URL a user typed, from inside AWS. So: https only, port 443,
no userinfo; the host is resolved once and every address it resolves to must be public
(no loopback, private, link-local such as the instance metadata service 169.254.169.254,
shared, multicast or reserved range), and the connection goes to the address checked, not
to a second resolution (no DNS rebinding), with TLS verified for the host name. Redirects
are not followed (give the final URL); the answer must come within the timeout and the
size cap. Local mode may allow private addresses (its IdP stand-in is on 127.0.0.1).
Every refusal is InvalidSsoConfig (422) saying what is wrong; nothing is logged but the
host.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from aws_lambda_powertools import Logger

from agent_builder.errors import InvalidSsoConfig
from agent_builder.saml_metadata import MAX_METADATA_BYTES

logger = Logger(child=True)

TIMEOUT_SECONDS = 5.0
MAX_URL_LENGTH = 2048
Resolver = Callable[[str, int], Sequence[str]]


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (IPv4 and IPv6)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


class _PinnedHttps(http.client.HTTPSConnection):
    """An HTTPS connection to one checked address, verifying the certificate for `host`."""

    def __init__(self, host: str, address: str, *, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(host, 443, timeout=timeout, context=context)
        self._address = address
        self._tls = context

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)


class MetadataFetcher:
    def __init__(
        self,
        *,
        allow_private: bool = False,
        timeout: float = TIMEOUT_SECONDS,
        max_bytes: int = MAX_METADATA_BYTES,
        resolver: Resolver = resolve,
        context: ssl.SSLContext | None = None,
    ) -> None:
        self._allow_private = allow_private
        self._timeout = timeout
        self._max = max_bytes
        self._resolve = resolver
        self._context = context or ssl.create_default_context()

    def check_url(self, url: object) -> tuple[str, str]:
        """(host, path and query) of an acceptable URL; InvalidSsoConfig otherwise."""
        if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
            raise InvalidSsoConfig(
                f"samlMetadataUrl must be an https URL of at most {MAX_URL_LENGTH} characters"
            )
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise InvalidSsoConfig("samlMetadataUrl is not a valid URL") from None
        if parts.scheme != "https":
            raise InvalidSsoConfig("samlMetadataUrl must use https")
        if parts.username is not None or parts.password is not None:
            raise InvalidSsoConfig("samlMetadataUrl must not carry a user name or password")
        if port not in (None, 443) and not self._allow_private:
            raise InvalidSsoConfig("samlMetadataUrl must use the https port, 443")
        host = parts.hostname or ""
        if not host:
            raise InvalidSsoConfig("samlMetadataUrl has no host")
        target = parts.path or "/"
        if parts.query:
            target += f"?{parts.query}"
        return host, target

    def fetch(self, url: str) -> bytes:
        host, target = self.check_url(url)
        port = urlsplit(url).port or 443
        try:
            addresses = list(self._resolve(host, port))
        except OSError:
            raise InvalidSsoConfig(f"samlMetadataUrl: the host {host} does not resolve") from None
        if not addresses:
            raise InvalidSsoConfig(f"samlMetadataUrl: the host {host} does not resolve")
        if not self._allow_private and not all(_public(a) for a in addresses):
            logger.warning("metadata URL refused: not a public address", host=host)
            raise InvalidSsoConfig(
                f"samlMetadataUrl: {host} resolves to a private, loopback or reserved address; "
                "the metadata must be on the internet (or paste it as samlMetadataXml)"
            )
        deadline = time.monotonic() + self._timeout
        connection = _PinnedHttps(host, addresses[0], timeout=self._timeout, context=self._context)
        connection.port = port
        try:
            connection.request(
                "GET", target, headers={"Host": host, "Accept": "application/xml, text/xml"}
            )
            response = connection.getresponse()
            if 300 <= response.status < 400:
                raise InvalidSsoConfig(
                    f"samlMetadataUrl redirects (HTTP {response.status}); give the final URL"
                )
            if response.status != 200:
                raise InvalidSsoConfig(f"samlMetadataUrl answered HTTP {response.status}")
            body = bytearray()
            while True:
                if time.monotonic() > deadline:
                    raise TimeoutError()
                chunk = response.read(16 * 1024)
                if not chunk:
                    break
                body += chunk
                if len(body) > self._max:
                    raise InvalidSsoConfig(
                        f"samlMetadataUrl answered more than {self._max // 1024} KiB"
                    )
        except InvalidSsoConfig:
            raise
        except TimeoutError:
            raise InvalidSsoConfig(
                f"samlMetadataUrl did not answer within {self._timeout:g} seconds"
            ) from None
        except ssl.SSLError:
            raise InvalidSsoConfig(
                f"samlMetadataUrl: the TLS certificate of {host} could not be verified"
            ) from None
        except (OSError, http.client.HTTPException):
            logger.info("metadata URL unreachable", host=host)
            raise InvalidSsoConfig(f"samlMetadataUrl: {host} could not be reached") from None
        finally:
            connection.close()
        return bytes(body)


__all__ = ["TIMEOUT_SECONDS", "MetadataFetcher", "resolve"]
