"""A stand-in for the ALB's public-key endpoint: ES256 keys made in the test, served on loopback.

`https://public-keys.auth.elb.{region}.amazonaws.com/{kid}` answers a PEM public key; this
server answers the same for the kids it was given, 404 for any other, and counts requests.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

_ELB = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app"
ALB_ARN = f"{_ELB}/aiops-console/0123456789abcdef"
OTHER_ALB_ARN = f"{_ELB}/other/fedcba9876543210"


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def alb_token(
    key: ec.EllipticCurvePrivateKey,
    kid: str,
    *,
    signer: str = ALB_ARN,
    email: str | None = "alice@example.com",
    sub: str = "0f1e2d3c-user",
    expires_in: float = 120,
    payload_exp: bool = False,
    alg: str = "ES256",
) -> str:
    """An `x-amzn-oidc-data` value as the ALB makes it: header {alg, kid, signer, iss, client,
    exp}, payload the user's claims."""
    exp = int(time.time() + expires_in)
    claims: dict[str, Any] = {"sub": sub, "iss": "https://idp.example.com"}
    if email is not None:
        claims["email"] = email
    if payload_exp:
        claims["exp"] = exp
    headers = {
        "kid": kid,
        "signer": signer,
        "iss": "https://idp.example.com",
        "client": "console-client",
        "exp": exp,
    }
    return jwt.encode(claims, key, algorithm=alg, headers=headers)


class KeyServer:
    """`async with KeyServer({kid: key}) as keys:` -- `keys.url`, `keys.requests`."""

    def __init__(self, keys: dict[str, ec.EllipticCurvePrivateKey]) -> None:
        self.keys = keys
        self.requests: list[str] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    @staticmethod
    def fresh_kid() -> str:
        return str(uuid.uuid4())

    async def _serve(self, request: web.Request) -> web.Response:
        kid = request.match_info["kid"]
        self.requests.append(kid)
        key = self.keys.get(kid)
        if key is None:
            raise web.HTTPNotFound()
        return web.Response(body=pem(key), content_type="application/x-pem-file")

    async def __aenter__(self) -> KeyServer:
        app = web.Application()
        app.router.add_get("/{kid}", self._serve)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
