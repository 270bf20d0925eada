"""The console's aiohttp application: middlewares (security headers, authentication, CSRF) and
its construction from the settings. The pages themselves are in `pages.py`.

Mounted under `/console/` on the agent's HTTP server only when `AIOPS_CONSOLE_AUTH` is not
`off`: with it off, nothing of the console exists and every `/console/` URL answers 404.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware

from aiops_agent.console.alb import AlbKeys, AlbVerifier, default_keys_url
from aiops_agent.console.auth import (
    COOKIE_PATH,
    CSRF_COOKIE,
    AlbAuth,
    Authenticator,
    TokenAuth,
    csrf_matches,
    secure_cookies,
)
from aiops_agent.domain.messages import Approved, Rejected
from aiops_agent.domain.models import Incident
from aiops_agent.domain.ports import ControlStore, IncidentStore
from aiops_agent.obs.metrics import Metrics
from aiops_agent.settings import Settings

log = structlog.get_logger(__name__)

PREFIX = "/console"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-store",
}
"""On every console response. `no-store` everywhere: nearly every page shows incident data, and
the few that do not (sign-in, the stylesheet) cost nothing to fetch again."""

PUBLIC = frozenset({f"{PREFIX}/signin", f"{PREFIX}/static/console.css"})
"""The only console URLs answered without credentials."""

Reviewer = Callable[[str, Approved | Rejected], Awaitable[Incident]]
"""`Engine.answer_review`: the one path by which a review is answered (CLI and console)."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class ConsoleDeps:
    store: IncidentStore
    review: Reviewer
    metrics: Metrics
    auth: Authenticator
    token_auth: TokenAuth | None
    session_seconds: float
    control: ControlStore | None = None
    """Silences, freezes and the pause; None: the controls page is not offered."""
    now: Callable[[], datetime] = lambda: datetime.now(UTC)


def _with_headers(response: web.StreamResponse) -> web.StreamResponse:
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    return response


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        _with_headers(exc)
        raise
    return _with_headers(response)


def _same_origin(request: web.Request) -> bool:
    """A state-changing request must come from the console's own pages.

    Browsers send `Sec-Fetch-Site` and `Origin` on a form POST; a script without them (curl with
    a bearer token) is judged by its credentials and CSRF token alone. Under the console's
    `Referrer-Policy: no-referrer` Chromium sends `Origin: null` for its own forms: that says
    nothing either way, and `Sec-Fetch-Site` decides. The CSRF token is the defence; these
    headers are a second one.
    """
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        return True
    return urlsplit(origin).netloc.lower() == (request.host or "").lower()


def auth_middleware(deps: ConsoleDeps) -> Middleware:
    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in PUBLIC:
            return await handler(request)
        principal = await deps.auth.authenticate(request)
        if principal is None:
            deps.metrics.console_refused("auth")
            log.info(
                "console.unauthenticated",
                path=request.path,
                method=request.method,
                why=request.get("auth_refused", "no credentials"),
            )
            wants_page = (
                request.method in ("GET", "HEAD") and "Authorization" not in request.headers
            )
            if deps.token_auth is not None and wants_page:
                target = quote(request.path_qs, safe="/?=&")
                raise web.HTTPSeeOther(f"{PREFIX}/signin?next={target}")
            headers = {"WWW-Authenticate": 'Bearer realm="aiops-console"'}
            raise web.HTTPUnauthorized(
                text="401: sign in to the aiops-agent console\n", headers=headers
            )
        request["principal"] = principal
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            form = await request.post()
            supplied = form.get("csrf")
            if not _same_origin(request) or not csrf_matches(
                principal, supplied if isinstance(supplied, str) else None
            ):
                deps.metrics.console_refused("csrf")
                log.warning("console.csrf_refused", path=request.path, who=principal.identity)
                raise web.HTTPForbidden(
                    text="403: this form has no valid CSRF token; reload the page and try again\n"
                )
        response = await handler(request)
        if principal.set_csrf_cookie is not None:
            response.set_cookie(
                CSRF_COOKIE,
                principal.set_csrf_cookie,
                path=COOKIE_PATH,
                httponly=True,
                secure=secure_cookies(request),
                samesite="Strict",
            )
        return response

    return authenticate


def build_authenticator(
    settings: Settings, *, alb_keys: AlbKeys | None = None
) -> tuple[Authenticator, TokenAuth | None, AlbKeys | None]:
    session_seconds = settings.console_session_hours * 3600
    if settings.console_auth == "token":
        assert settings.console_token is not None  # Settings.check_console
        token = TokenAuth(
            settings.console_token.get_secret_value(), session_seconds=session_seconds
        )
        return token, token, None
    assert settings.console_alb_arn is not None  # Settings.check_console
    keys = alb_keys or AlbKeys(settings.console_alb_keys_url or default_keys_url(settings.region))
    return AlbAuth(AlbVerifier(settings.console_alb_arn, keys)), None, keys


def build_console(
    settings: Settings,
    store: IncidentStore,
    review: Reviewer,
    metrics: Metrics,
    *,
    control: ControlStore | None = None,
    now: Callable[[], datetime] | None = None,
) -> web.Application | None:
    """The console application, or None when `AIOPS_CONSOLE_AUTH` is `off`."""
    from aiops_agent.console import pages

    if settings.console_auth == "off":
        return None
    auth, token_auth, keys = build_authenticator(settings)
    deps = ConsoleDeps(
        store=store,
        review=review,
        metrics=metrics,
        auth=auth,
        token_auth=token_auth,
        session_seconds=settings.console_session_hours * 3600,
        control=control,
    )
    if now is not None:
        deps.now = now
    app = web.Application(middlewares=[security_headers, auth_middleware(deps)])
    pages.add_routes(app, deps)
    if keys is not None:

        async def close_keys(_: web.Application) -> None:
            await keys.close()

        app.on_cleanup.append(close_keys)
    log.info("console.enabled", auth=settings.console_auth)
    return app
