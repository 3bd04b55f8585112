"""Who may see what: the board, the catalogue and ticket lookup are public; a site's manager
token opens its console and actions, the supervisor token every site's.

A token is presented as ``Authorization: Bearer <token>``, or as the cookie a page sets after
``?token=`` or its login form (``remember``). Tokens come from the environment (names in
``[web]`` of the site configuration) and are compared in constant time.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterable, Mapping

from aiohttp import web

from .errors import ApiError

SUPERVISOR_TOKEN_ENV = "HALLWATCH_SUPERVISOR_TOKEN"
MIN_TOKEN_LENGTH = 16  # 16 random characters: beyond any guessing at 10 wrong tokens a minute
COOKIE_SUPERVISE = "hw_supervise"
COOKIE_MAX_AGE_S = 30 * 86400


def manage_cookie(site: str) -> str:
    return f"hw_manage_{site}"


class WeakToken(ValueError):
    """A token shorter than MIN_TOKEN_LENGTH: the engine refuses to start with it."""


class Access:
    """The tokens: one per site for its manager, one for the supervision office."""

    def __init__(self, supervisor: str | None, managers: Mapping[str, str | None]):
        self.supervisor = supervisor or None
        self.managers = {site: token or None for site, token in managers.items()}

    @classmethod
    def from_environment(cls, sites, environ: Mapping[str, str] | None = None) -> Access:
        """The tokens from the environment variables that hold them; raises WeakToken, naming
        the variable, for one shorter than MIN_TOKEN_LENGTH (an empty one is no token)."""
        environ = os.environ if environ is None else environ
        names = [SUPERVISOR_TOKEN_ENV] + [s.web.token_env(s.id) for s in sites]
        for name in names:
            length = len(environ.get(name) or "")
            if 0 < length < MIN_TOKEN_LENGTH:
                raise WeakToken(
                    f"{name} is {length} character(s) long: a token needs at least {MIN_TOKEN_LENGTH} "
                    "(make one with `openssl rand -hex 24`)"
                )
        return cls(environ.get(SUPERVISOR_TOKEN_ENV), {s.id: environ.get(s.web.token_env(s.id)) for s in sites})

    @staticmethod
    def _equal(presented: str, expected: str | None) -> bool:
        if expected is None:
            return False
        # surrogatepass: a token from a request may carry lone surrogates (bytes that were not UTF-8)
        return hmac.compare_digest(presented.encode("utf-8", "surrogatepass"), expected.encode())

    def role_for(self, token: str, site: str | None) -> str | None:
        """ "supervisor", "manager" (of ``site``) or None."""
        if self._equal(token, self.supervisor):
            return "supervisor"
        if site is not None and self._equal(token, self.managers.get(site)):
            return "manager"
        return None

    def check(self, request: web.Request, site: str | None) -> str:
        """The role the request's token gives for ``site`` (None: the supervision office);
        raises 401 without a token, 403 with a wrong one or when no token is configured."""
        configured = self.supervisor is not None or (site is not None and self.managers.get(site) is not None)
        if not configured:
            env = SUPERVISOR_TOKEN_ENV if site is None else f"{SUPERVISOR_TOKEN_ENV} 或站点的管理令牌"
            raise ApiError(403, "access_not_configured", f"未配置访问令牌（{env}），拒绝访问")
        presented = presented_tokens(request, site)
        if not presented:
            raise ApiError(
                401,
                "missing_token",
                "需要访问令牌（Authorization: Bearer …）",
                headers={"WWW-Authenticate": 'Bearer realm="hallwatch"'},
            )
        for token in presented:
            role = self.role_for(token, site)
            if role is not None:
                return role
        raise ApiError(403, "bad_token", "访问令牌不正确或无权访问" + ("本站点" if site else "监察台"))


def presented_tokens(request: web.Request, site: str | None) -> list[str]:
    """The tokens the request presents: its bearer token, else its token cookies. 400
    ``bad_header`` when the header holds bytes that are not UTF-8 (no token we hand out)."""
    auth = request.headers.get("Authorization", "")
    if auth:
        _readable(auth, "Authorization")
        scheme, _, token = auth.partition(" ")
        return [token.strip()] if scheme.lower() == "bearer" and token.strip() else ["\x00invalid"]
    names = [COOKIE_SUPERVISE] + ([manage_cookie(site)] if site is not None else [])
    tokens = [request.cookies[n] for n in names if request.cookies.get(n)]
    for token in tokens:
        _readable(token, "Cookie")
    return tokens


def _readable(value: str, header: str) -> None:
    try:
        value.encode("utf-8")  # aiohttp keeps undecodable bytes as lone surrogates
    except UnicodeEncodeError:
        raise ApiError(400, "bad_header", f"{header} 头含有非 UTF-8 字节", header=header, malformed=True) from None


def remember(
    response: web.Response, request: web.Request, role: str, site: str | None, token: str, *, always_secure: bool
) -> None:
    """Keep a token that gave ``role`` in the cookie the pages present from now on: Secure
    when the request came over HTTPS (``request.secure``, which a trusted proxy may tell) or
    ``always_secure`` (``hallwatch engine --cookie-secure``)."""
    response.set_cookie(
        COOKIE_SUPERVISE if role == "supervisor" or site is None else manage_cookie(site),
        token,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=request.secure or always_secure,
        max_age=COOKIE_MAX_AGE_S,
    )


def forget(response: web.Response, request: web.Request, sites: Iterable[str]) -> None:
    """Delete every token cookie the request carries."""
    for name in [COOKIE_SUPERVISE] + [manage_cookie(s) for s in sites]:
        if name in request.cookies:
            response.del_cookie(name, path="/")
