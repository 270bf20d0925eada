"""Who is asking: the console's authentication (`token`, `alb-oidc`) and its CSRF tokens.

`token`: the operator presents `AIOPS_CONSOLE_TOKEN`, either on every request
(`Authorization: Bearer ...`, for scripts) or once on the sign-in page, which sets a session
cookie. The cookie is self-contained and signed (HMAC-SHA256 with a key derived from the token):
every replica that shares the token accepts it, none has to store it, and rotating the token
ends every session. It holds a random session id, the name the operator gave (recorded in the
audit trail as "NAME (token sign-in)": the token is shared, so the name is the operator's word)
and an expiry. The CSRF token of a session is an HMAC of its id.

`alb-oidc`: the load balancer authenticates; each request's `x-amzn-oidc-data` is verified
(`alb.py`). The CSRF token is a random value kept in a SameSite=Strict, HttpOnly cookie and
repeated in every form (double submit); the cookie is set on the first page.

Every comparison of a secret is constant-time (`hmac.compare_digest`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Literal, Protocol

from aiohttp import web

from aiops_agent.console.alb import HEADER, AlbVerifier, InvalidToken

SESSION_COOKIE = "aiops_console_session"
CSRF_COOKIE = "aiops_console_csrf"
COOKIE_PATH = "/console/"
MAX_NAME = 80


@dataclass(frozen=True)
class Principal:
    identity: str
    """Who, as the audit trail records it."""
    via: Literal["session", "bearer", "alb"]
    csrf: str
    """The CSRF token this principal's forms carry."""
    set_csrf_cookie: str | None = None
    """A fresh CSRF cookie to set on the response (alb-oidc, first page)."""


class Authenticator(Protocol):
    mode: str

    async def authenticate(self, request: web.Request) -> Principal | None:
        """The principal of `request`, or None (not signed in, or refused)."""


def secure_cookies(request: web.Request) -> bool:
    """Secure cookies, unless the console is reached over plain http on a loopback address."""
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    if request.secure or forwarded == "https":
        return True
    host = (request.host or "").rsplit(":", 1)[0].strip("[]").lower()
    if host == "localhost":
        return False
    try:
        return not ip_address(host).is_loopback
    except ValueError:
        return True


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def clean_name(raw: str) -> str:
    """An operator's name as the audit trail may show it: one printable line, bounded."""
    text = " ".join("".join(ch if ch.isprintable() else " " for ch in raw).split())
    return text[:MAX_NAME]


class TokenAuth:
    mode = "token"

    def __init__(self, token: str, *, session_seconds: float) -> None:
        self._token = token.encode()
        self._key = hmac.new(self._token, b"aiops-console-session-v1", hashlib.sha256).digest()
        self._session_seconds = session_seconds

    def token_matches(self, supplied: str) -> bool:
        return hmac.compare_digest(supplied.encode(), self._token)

    def _mac(self, message: bytes) -> bytes:
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def csrf_for(self, sid: str) -> str:
        return _b64(self._mac(b"csrf|" + sid.encode()))

    def new_session(self, name: str, *, now: float | None = None) -> str:
        """A signed session cookie value for operator `name`."""
        at = time.time() if now is None else now
        body = json.dumps(
            {"sid": secrets.token_urlsafe(24), "who": name, "exp": int(at + self._session_seconds)},
            separators=(",", ":"),
        ).encode()
        return f"{_b64(body)}.{_b64(self._mac(body))}"

    def read_session(self, value: str, *, now: float | None = None) -> Principal | None:
        body_text, _, mac_text = value.partition(".")
        try:
            body, mac = _unb64(body_text), _unb64(mac_text)
        except ValueError:
            return None
        if not hmac.compare_digest(mac, self._mac(body)):
            return None
        try:
            data = json.loads(body)
            sid, who, expiry = str(data["sid"]), str(data["who"]), float(data["exp"])
        except (ValueError, KeyError, TypeError):
            return None
        if expiry < (time.time() if now is None else now):
            return None
        return Principal(identity=f"{who} (token sign-in)", via="session", csrf=self.csrf_for(sid))

    async def authenticate(self, request: web.Request) -> Principal | None:
        authorization = request.headers.get("Authorization", "")
        if authorization:
            scheme, _, supplied = authorization.partition(" ")
            if scheme.lower() != "bearer" or not self.token_matches(supplied.strip()):
                return None
            return Principal(identity="bearer token", via="bearer", csrf=self.csrf_for("bearer"))
        cookie = request.cookies.get(SESSION_COOKIE)
        return self.read_session(cookie) if cookie else None


class AlbAuth:
    mode = "alb-oidc"

    def __init__(self, verifier: AlbVerifier) -> None:
        self._verifier = verifier

    async def authenticate(self, request: web.Request) -> Principal | None:
        try:
            who = await self._verifier.verify(request.headers.get(HEADER))
        except InvalidToken as exc:
            request["auth_refused"] = str(exc)
            return None
        existing = request.cookies.get(CSRF_COOKIE, "")
        if len(existing) >= 32:
            return Principal(identity=who.identity, via="alb", csrf=existing)
        fresh = secrets.token_urlsafe(32)
        return Principal(identity=who.identity, via="alb", csrf=fresh, set_csrf_cookie=fresh)


def csrf_matches(principal: Principal, supplied: str | None) -> bool:
    return bool(supplied) and hmac.compare_digest(str(supplied).encode(), principal.csrf.encode())
