"""What every handler shares, kept in the application under ``WEB``: the engine, the tokens
and who has been guessing them, the live broadcaster, the phone limits, the server's settings
and the page templates."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, cast

from aiohttp import web

from ..privacy import citizen_secret
from .errors import QUIET_LOG, ApiError, printable
from .limits import PhoneLimits, WrongTokens
from .live import Broadcaster
from .server import HttpSettings

if TYPE_CHECKING:
    from ..app import EngineApp
    from ..core.hall import Hall
    from .access import Access
    from .phoneverify import PhoneVerifier


class TokenGate:
    """The tokens a web shell accepts and who has been guessing them: the engine's and the
    county service's consoles. ``access`` may be replaced while serving: handlers read it on
    every request."""

    def __init__(self, access: Access, settings: HttpSettings):
        self.access = access
        self.settings = settings
        self.wrong_tokens = WrongTokens(settings.wrong_tokens_per_minute)

    def authorize(self, request: web.Request, site: str | None) -> str:
        """The role the request's token gives for ``site`` (None: the supervision office), as
        ``Access.check`` says; 429 for an address that presented too many wrong tokens."""
        address = request.remote or "unknown"
        self.wrong_tokens.refuse_if_throttled(address)
        try:
            return self.access.check(request, site)
        except ApiError as err:
            if err.code == "bad_token":
                self.wrong_token(request, address)
            elif err.code == "bad_header":  # counted; logged as the malformed request it is
                self.wrong_tokens.record(address)
            raise

    def login_role(self, request: web.Request, token: str, site: str | None) -> str | None:
        """The role ``token`` (from a login form or a page's address) gives for ``site``."""
        address = request.remote or "unknown"
        self.wrong_tokens.refuse_if_throttled(address)
        role = self.access.role_for(token, site)
        if role is None:
            self.wrong_token(request, address)
        return role

    def wrong_token(self, request: web.Request, address: str) -> None:
        presented = self.wrong_tokens.record(address)
        quiet = request.app[QUIET_LOG]
        quiet.line(
            ("web: wrong tokens from", address),
            logging.WARNING,
            "web: wrong token from %s (%s %s)",
            address,
            request.method,
            printable(request.path),
        )
        if presented >= self.wrong_tokens.per_minute:
            quiet.line(
                ("web: tokens refused from", address),
                logging.WARNING,
                "web: %s presented %d wrong tokens within a minute: its tokens are refused (429) for a minute",
                address,
                presented,
            )


class Web(TokenGate):
    """The web shell of one engine."""

    def __init__(self, engine_app: EngineApp, access: Access, templates: Mapping[str, str], settings: HttpSettings):
        super().__init__(access, settings)
        self.engine_app = engine_app
        self.broadcaster = Broadcaster(engine_app)
        self.limits = PhoneLimits()
        self.templates = templates
        self.phone_verifier = cast("PhoneVerifier | None", settings.phone_verifier)
        # The key of the citizen keys phone numbers are kept as (privacy.py); None without a ticket secret.
        secret = engine_app.ingest.links.secret
        self.citizen_secret = citizen_secret(secret) if secret is not None else None

    @property
    def now(self) -> float:
        return self.engine_app.clock.now()

    def hall(self, request: web.Request) -> Hall:
        """The hall named by the route's ``{site}``; 404 when there is none."""
        site = request.match_info["site"]
        hall = self.engine_app.engine.halls.get(site)
        if hall is None:
            raise ApiError(404, "unknown_site", f"没有这个站点：{site}", site=site)
        return hall

    async def on_shutdown(self, app: web.Application) -> None:
        self.broadcaster.close_all()


WEB = web.AppKey("web", Web)
