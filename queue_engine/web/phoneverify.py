"""Optional SMS verification of the phone number a ticket is taken with: a hook, with no
provider built in. A deployment that has an SMS gateway plugs in an object with the two
methods below (``hallwatch engine --phone-verifier MODULE:FACTORY``, the factory called with no
argument); the API then sends a code on ``POST /api/v1/sites/{site}/phone-codes`` and takes a
number only with the right ``code``. Without one, phone numbers are not verified (the limits
per phone, network and site still hold)."""

from __future__ import annotations

import importlib
from typing import Protocol, runtime_checkable


@runtime_checkable
class PhoneVerifier(Protocol):
    async def send_code(self, site: str, phone: str) -> None:
        """Send a one-time code to ``phone`` (raise to refuse: the API answers 503)."""

    async def check_code(self, site: str, phone: str, code: str) -> bool:
        """Whether ``code`` is the one sent to ``phone`` and still valid."""


def load_verifier(spec: str) -> PhoneVerifier:
    """``MODULE:FACTORY``: the factory's result, which must have both methods."""
    module_name, sep, name = spec.partition(":")
    if not sep or not module_name or not name:
        raise ValueError(f"{spec!r}: expected MODULE:FACTORY, e.g. mygateway.sms:Verifier")
    try:
        factory = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"{spec!r}: {err}") from None
    verifier = factory()
    if not isinstance(verifier, PhoneVerifier):
        raise ValueError(f"{spec!r}: its object has no async send_code(site, phone) and check_code(site, phone, code)")
    return verifier
