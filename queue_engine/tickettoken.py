"""The ticket's token: the part of a slip's link (``{public_url}/t/{site}/{token}``) that lets
a phone follow that one ticket, without a login.

A token is ``{day}-{number}-{mac}``, e.g. ``20261125-A012-k3v…``: the ticket it names (its
local day and number, which the slip shows anyway) and a keyed MAC of the site, the day and
the number (HMAC-SHA256 under the engine's ticket secret, truncated to 120 bits, base32 in
lower case). Nobody without the secret can make the token of another ticket, and the web
finds the ticket from the token itself and checks it by computing the MAC again: nothing is
stored, nothing random is drawn, and the core never sees it (the shell that renders the
kiosk's reply adds it).

The secret is read once when the engine starts (``load_secret``), from the environment or a
file; engines that may serve the same site (shards, a site moved between them) must share it,
and changing it invalidates the links of the slips already printed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

SECRET_ENV = "HALLWATCH_TICKET_SECRET"
MIN_SECRET_CHARS = 16
MAC_BYTES = 15  # 120 bits: 24 base32 characters, no padding
# Versioned, so a later scheme can never produce a token this one accepts.
_CONTEXT = b"hallwatch ticket token v1"
_TOKEN_RE = re.compile(r"^(\d{8})-([A-Z]{1,2}\d{1,6})-([a-z2-7]{24})$")


class SecretError(ValueError):
    """The ticket secret is unusable; the text says where it came from and why."""


@dataclass(frozen=True, slots=True)
class TicketRef:
    """The ticket a token names: its site, its local day (ISO) and its number."""

    site: str
    day: str
    no: str


def _mac(secret: bytes, site: str, day: str, no: str) -> str:
    message = b"\n".join((_CONTEXT, site.encode(), day.encode(), no.encode()))
    digest = hmac.new(secret, message, hashlib.sha256).digest()[:MAC_BYTES]
    return base64.b32encode(digest).decode("ascii").lower()


def ticket_token(secret: bytes, site: str, day: str, no: str) -> str:
    """The token of ticket ``no`` of local day ``day`` (``YYYY-MM-DD``) at ``site``."""
    return f"{day.replace('-', '')}-{no}-{_mac(secret, site, day, no)}"


def verify_ticket_token(secret: bytes, site: str, token: str) -> TicketRef | None:
    """The ticket ``token`` names at ``site``, or None when it is not one this secret made for
    this site (malformed, altered, another site's). The MAC is compared in constant time."""
    match = _TOKEN_RE.match(token)
    if match is None:
        return None
    compact, no, presented = match.groups()
    day = f"{compact[:4]}-{compact[4:6]}-{compact[6:]}"
    if not hmac.compare_digest(presented, _mac(secret, site, day, no)):
        return None
    return TicketRef(site, day, no)


_ENTRANCE = b"hallwatch entrance key v1"
ENTRANCE_KEY_RE = re.compile(r"^[a-z2-7]{16}$")


def entrance_key(secret: bytes, site: str) -> str:
    """The key in the hall entrance poster's check-in link (``check_in_url``): a phone that
    presents it with a reserved ticket's token checks that ticket in. 80 bits, so that nobody
    away from the hall (who has not read the poster) can make it."""
    digest = hmac.new(secret, _ENTRANCE + b"\n" + site.encode(), hashlib.sha256).digest()[:10]
    return base64.b32encode(digest).decode("ascii").lower()


def check_in_url(public_url: str, site: str, key: str) -> str:
    """The hall entrance poster's link: ``{public_url}/c/{site}?k={key}``."""
    return f"{public_url}/c/{site}?k={key}"


def slip_url(public_url: str, site: str, token: str) -> str:
    """The slip's link, opened on the phone: ``{public_url}/t/{site}/{token}``."""
    return f"{public_url}/t/{site}/{token}"


# A case's token: ``{case no}-{mac}`` (e.g. ``J20261125001-k3v…``), the same MAC scheme under
# its own context, so that a ticket's token can never pass for a case's nor the other way.
_CASE_CONTEXT = b"hallwatch case token v1"
_CASE_TOKEN_RE = re.compile(r"^(J\d{11,14})-([a-z2-7]{24})$")


def _case_mac(secret: bytes, site: str, no: str) -> str:
    message = b"\n".join((_CASE_CONTEXT, site.encode(), no.encode()))
    digest = hmac.new(secret, message, hashlib.sha256).digest()[:MAC_BYTES]
    return base64.b32encode(digest).decode("ascii").lower()


def case_token(secret: bytes, site: str, no: str) -> str:
    """The token of case ``no`` (a 办件 number, ``J…``) at ``site``: good for as long as the case
    is kept (a case outlives its visit's day, unlike a slip)."""
    return f"{no}-{_case_mac(secret, site, no)}"


def verify_case_token(secret: bytes, site: str, token: str) -> str | None:
    """The case number ``token`` names at ``site``, or None when this secret did not make it
    for this site. The MAC is compared in constant time."""
    match = _CASE_TOKEN_RE.match(token)
    if match is None:
        return None
    no, presented = match.groups()
    return no if hmac.compare_digest(presented, _case_mac(secret, site, no)) else None


def case_url(public_url: str, site: str, token: str) -> str:
    """The case's link (on the case slip and the phone): ``{public_url}/case/{site}/{token}``."""
    return f"{public_url}/case/{site}/{token}"


class TicketLinks:
    """What the engine adds to a ticket's reply: its token, and the slip's link for a site
    whose ``[web] public_url`` is set. Without a secret, neither."""

    def __init__(self, secret: bytes | None, public_urls: Mapping[str, str | None]):
        self.secret = secret
        self.public_urls = dict(public_urls)

    def link(self, site: str, day: str, no: str) -> tuple[str | None, str | None]:
        """(token, url) of a ticket; (None, None) when the engine has no ticket secret."""
        if self.secret is None:
            return None, None
        token = ticket_token(self.secret, site, day, no)
        public_url = self.public_urls.get(site)
        return token, slip_url(public_url, site, token) if public_url else None

    def case_link(self, site: str, no: str) -> tuple[str | None, str | None]:
        """(token, url) of a case; (None, None) when the engine has no ticket secret."""
        if self.secret is None:
            return None, None
        token = case_token(self.secret, site, no)
        public_url = self.public_urls.get(site)
        return token, case_url(public_url, site, token) if public_url else None


def load_secret(path: str | Path | None, environ: Mapping[str, str] | None = None) -> bytes | None:
    """The ticket secret: the file's content (``--ticket-secret-file``), else the
    environment variable ``HALLWATCH_TICKET_SECRET`` (unless empty), else None. At least 16 characters
    (e.g. ``openssl rand -base64 32``); surrounding whitespace is not part of it."""
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SecretError(f"--ticket-secret-file {path}: cannot read it: {exc}") from None
        where = f"--ticket-secret-file {path}"
    else:
        environ = os.environ if environ is None else environ
        if not environ.get(SECRET_ENV):  # unset, or set empty (as docker compose passes an unset one)
            return None
        text, where = environ[SECRET_ENV], SECRET_ENV
    secret = text.strip()
    if len(secret) < MIN_SECRET_CHARS:
        raise SecretError(
            f"{where}: the ticket secret has {len(secret)} characters, at least {MIN_SECRET_CHARS} are needed "
            "(e.g. the output of `openssl rand -base64 32`)"
        )
    return secret.encode("utf-8")
