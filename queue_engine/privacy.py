"""What hallwatch keeps of a citizen: keyed hashes, never the numbers (docs/deployment.md,
"Privacy").

A mobile number taken with a phone, and the ID card or mobile number a panel records on a
finished visit, are kept as the **citizen key**: an HMAC-SHA256 of the number (spaces removed,
letters upper-cased) under a key derived from the engine's ticket secret. The same number gives
the same key, so a phone's tickets are counted per day and a citizen's visits are linked into
one matter (core.cases), but the number cannot be found from the key by trying all numbers
without the key. Of a phone number only its last four digits are kept besides, for display.

Panels compute the same key: they are given the derived key (``hallwatch citizen-key`` prints
it; the panel agent reads it from ``HALLWATCH_CITIZEN_KEY`` or ``--citizen-key-file``), never
the ticket secret itself, which also signs the slips' tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from pathlib import Path

CITIZEN_KEY_ENV = "HALLWATCH_CITIZEN_KEY"
# Versioned, so a later scheme can never produce a key this one makes.
_CONTEXT = b"hallwatch citizen key v1"


class CitizenKeyError(ValueError):
    """The citizen key given to a panel is unusable; the text says where it came from."""


def citizen_secret(ticket_secret: bytes) -> bytes:
    """The key of the citizen keys, derived from the engine's ticket secret (32 bytes)."""
    return hmac.new(ticket_secret, _CONTEXT, hashlib.sha256).digest()


def citizen_key(secret: bytes, number: str) -> str:
    """The key a citizen is known by: the hex HMAC-SHA256 of the ID card or mobile number
    (spaces removed, letters upper-cased) under ``secret`` (``citizen_secret``)."""
    normalized = "".join(number.split()).upper()
    return hmac.new(secret, normalized.encode(), hashlib.sha256).hexdigest()


def phone_tail(phone: str) -> str:
    """The last four digits, all that is kept of a phone number to show."""
    return phone[-4:]


def load_citizen_secret(path: str | Path | None, environ: Mapping[str, str] | None = None) -> bytes | None:
    """A panel's citizen key (64 hex digits, as ``hallwatch citizen-key`` prints it): the file's
    content, else ``HALLWATCH_CITIZEN_KEY``, else None."""
    if path is not None:
        try:
            text, where = Path(path).read_text(encoding="utf-8"), f"--citizen-key-file {path}"
        except (OSError, UnicodeDecodeError) as exc:
            raise CitizenKeyError(f"--citizen-key-file {path}: cannot read it: {exc}") from None
    else:
        environ = os.environ if environ is None else environ
        if not environ.get(CITIZEN_KEY_ENV):
            return None
        text, where = environ[CITIZEN_KEY_ENV], CITIZEN_KEY_ENV
    try:
        secret = bytes.fromhex(text.strip())
    except ValueError:
        secret = b""
    if len(secret) != 32:
        raise CitizenKeyError(f"{where}: not a citizen key (64 hex digits, from `hallwatch citizen-key`)")
    return secret
