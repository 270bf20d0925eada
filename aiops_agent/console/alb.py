"""`alb-oidc`: the Application Load Balancer's signed `x-amzn-oidc-data` header, verified.

Behind an ALB listener rule with an `authenticate-oidc` action, every request the ALB forwards
carries the user's claims as a JWT the ALB signed (ES256). The header of that JWT names the key
(`kid`) and the load balancer that signed it (`signer`); the public key is a PEM document at
`https://public-keys.auth.elb.{region}.amazonaws.com/{kid}`. Verification (PyJWT over
`cryptography`, no hand-written crypto): ES256 only, the signer must be our load balancer,
the signature must hold for the key of that `kid`, and the token must not have expired (ALB
puts `exp` in the JWT header; a payload `exp` is checked as well).
"""

from __future__ import annotations

import asyncio
import hmac
import re
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import jwt
import structlog
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

log = structlog.get_logger(__name__)

HEADER = "x-amzn-oidc-data"
LEEWAY_S = 30
"""Clock skew allowed on `exp` between the load balancer and this task."""
_KID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
"""A key id as it goes into the key URL: nothing that could change the URL's path or host."""
MAX_CACHED_KEYS = 64
FAILED_FETCH_BACKOFF_S = 30.0
"""A kid whose key could not be fetched is not asked for again for this long."""
FETCH_TIMEOUT_S = 5.0


def default_keys_url(region: str) -> str:
    return f"https://public-keys.auth.elb.{region}.amazonaws.com"


class InvalidToken(Exception):
    """The header is missing, malformed, expired, signed by someone else or wrongly signed."""


class AlbKeys:
    """The ALB's public keys by `kid`, fetched once each and cached (a kid's key never changes)."""

    def __init__(self, base_url: str, *, timeout_s: float = FETCH_TIMEOUT_S) -> None:
        self._base = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._keys: dict[str, EllipticCurvePublicKey] = {}
        self._failed: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._session: aiohttp.ClientSession | None = None
        self.fetches = 0
        """How many times a key was fetched (tests check the cache with it)."""

    async def get(self, kid: str) -> EllipticCurvePublicKey:
        if not _KID.match(kid):
            raise InvalidToken("malformed key id")
        cached = self._keys.get(kid)
        if cached is not None:
            return cached
        lock = self._locks.setdefault(kid, asyncio.Lock())
        async with lock:
            cached = self._keys.get(kid)
            if cached is not None:
                return cached
            failed_at = self._failed.get(kid)
            if failed_at is not None and time.monotonic() - failed_at < FAILED_FETCH_BACKOFF_S:
                raise InvalidToken("the load balancer's key for this token is unavailable")
            try:
                key = await self._fetch(kid)
            except InvalidToken:
                self._remember_failure(kid)
                raise
            if len(self._keys) >= MAX_CACHED_KEYS:
                self._keys.pop(next(iter(self._keys)))
            self._keys[kid] = key
            self._failed.pop(kid, None)
        self._locks.pop(kid, None)
        return key

    def _remember_failure(self, kid: str) -> None:
        if len(self._failed) >= MAX_CACHED_KEYS:
            self._failed.pop(next(iter(self._failed)))
        self._failed[kid] = time.monotonic()

    async def _fetch(self, kid: str) -> EllipticCurvePublicKey:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        url = f"{self._base}/{kid}"
        self.fetches += 1
        try:
            async with self._session.get(url, allow_redirects=False) as resp:
                if resp.status != 200:
                    log.warning("console.alb_key_fetch_failed", kid=kid, status=resp.status)
                    raise InvalidToken("the load balancer's key for this token is unavailable")
                pem = await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("console.alb_key_fetch_failed", kid=kid, error=repr(exc))
            raise InvalidToken("the load balancer's key for this token is unavailable") from None
        try:
            key = load_pem_public_key(pem[:8192])
        except ValueError:
            log.warning("console.alb_key_unreadable", kid=kid)
            raise InvalidToken("the load balancer's key for this token is unreadable") from None
        if not isinstance(key, EllipticCurvePublicKey):
            raise InvalidToken("the load balancer's key for this token is not an EC key")
        return key

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


@dataclass(frozen=True)
class AlbIdentity:
    identity: str
    claims: dict[str, Any]


class AlbVerifier:
    """Checks one `x-amzn-oidc-data` value against the configured load balancer."""

    def __init__(self, alb_arn: str, keys: AlbKeys, *, leeway_s: float = LEEWAY_S) -> None:
        self._arn = alb_arn
        self._keys = keys
        self._leeway = leeway_s

    async def verify(self, token: str | None, *, now: float | None = None) -> AlbIdentity:
        if not token:
            raise InvalidToken(f"no {HEADER} header")
        if len(token) > 16384:
            raise InvalidToken("token too large")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("malformed token") from None
        if header.get("alg") != "ES256":
            raise InvalidToken("token not signed with ES256")
        signer = header.get("signer")
        if not isinstance(signer, str) or not hmac.compare_digest(
            signer.encode(), self._arn.encode()
        ):
            raise InvalidToken("token signed by another load balancer")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise InvalidToken("token without a key id")
        key = await self._keys.get(kid)
        at = time.time() if now is None else now
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=["ES256"],
                leeway=self._leeway,
                options={"verify_aud": False, "verify_iat": False, "verify_nbf": True},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("token expired") from None
        except jwt.PyJWTError:
            raise InvalidToken("bad token signature or claims") from None
        expiry = header.get("exp", claims.get("exp"))
        if expiry is None:
            raise InvalidToken("token without an expiry")
        try:
            expired = float(expiry) + self._leeway < at
        except (TypeError, ValueError):
            raise InvalidToken("token with a malformed expiry") from None
        if expired:
            raise InvalidToken("token expired")
        who = claims.get("email") or claims.get("sub")
        if not isinstance(who, str) or not who.strip():
            raise InvalidToken("token without email or sub")
        return AlbIdentity(identity=who.strip()[:200], claims=claims)
