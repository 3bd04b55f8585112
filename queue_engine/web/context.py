"""What every handler shares, kept in the application under ``WEB``: the engine, the tokens,
the live broadcaster, the phone limits and the page templates."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from aiohttp import web

from .errors import ApiError
from .limits import PhoneLimits
from .live import Broadcaster

if TYPE_CHECKING:
    from ..app import EngineApp
    from ..core.hall import Hall
    from .access import Access


class Web:
    """The web shell of one engine. ``access`` may be replaced while serving: handlers read
    it on every request."""

    def __init__(self, engine_app: EngineApp, access: Access, templates: Mapping[str, str]):
        self.engine_app = engine_app
        self.access = access
        self.broadcaster = Broadcaster(engine_app)
        self.limits = PhoneLimits()
        self.templates = templates

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
