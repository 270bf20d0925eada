"""`alb-oidc`: the ALB's signed header verified against keys made here, served on loopback."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import jwt
import pytest

from aiops_agent.console.alb import AlbKeys, AlbVerifier, InvalidToken
from tests.alb_keys import ALB_ARN, OTHER_ALB_ARN, KeyServer, alb_token, new_key


async def test_a_token_the_alb_signed_is_accepted_and_its_key_fetched_once() -> None:
    key, kid = new_key(), KeyServer.fresh_kid()
    async with KeyServer({kid: key}) as server:
        keys = AlbKeys(server.url)
        verifier = AlbVerifier(ALB_ARN, keys)
        try:
            results = await asyncio.gather(
                *(verifier.verify(alb_token(key, kid)) for _ in range(5))
            )
            assert {r.identity for r in results} == {"alice@example.com"}
            no_email = await verifier.verify(alb_token(key, kid, email=None, sub="user-42"))
            assert no_email.identity == "user-42"
            assert server.requests == [kid]  # cached: one fetch for six tokens
        finally:
            await keys.close()


def _forge_payload(token: str, **claims: object) -> str:
    header, payload, signature = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=="))
    data.update(claims)
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "garbage",
        "forged_payload",
        "other_key_same_kid",
        "expired",
        "expired_payload",
        "other_signer",
        "unknown_kid",
        "kid_path",
        "hs256_with_public_key",
        "alg_none",
        "no_identity",
    ],
)
async def test_a_forged_expired_or_wrongly_signed_token_is_refused(case: str) -> None:
    key, kid = new_key(), KeyServer.fresh_kid()
    async with KeyServer({kid: key}) as server:
        keys = AlbKeys(server.url)
        verifier = AlbVerifier(ALB_ARN, keys)
        good = alb_token(key, kid)
        tokens: dict[str, str | None] = {
            "missing": None,
            "garbage": "not.a.jwt",
            "forged_payload": _forge_payload(good, email="root@example.com"),
            "other_key_same_kid": alb_token(new_key(), kid),
            "expired": alb_token(key, kid, expires_in=-120),
            "expired_payload": alb_token(key, kid, expires_in=-120, payload_exp=True),
            "other_signer": alb_token(key, kid, signer=OTHER_ALB_ARN),
            "unknown_kid": alb_token(key, KeyServer.fresh_kid()),
            "kid_path": alb_token(key, "../../evil.example/key"),
            "hs256_with_public_key": jwt.encode(
                {"email": "root@example.com"},
                b"any-shared-secret-of-32-bytes-min",
                algorithm="HS256",
                headers={"kid": kid, "signer": ALB_ARN, "exp": int(time.time()) + 60},
            ),
            "alg_none": jwt.encode(
                {"email": "root@example.com"},
                None,
                algorithm="none",
                headers={"kid": kid, "signer": ALB_ARN, "exp": int(time.time()) + 60},
            ),
            "no_identity": alb_token(key, kid, email=None, sub=""),
        }
        try:
            with pytest.raises(InvalidToken):
                await verifier.verify(tokens[case])
            # The good token still passes against the same verifier (the refusal is the token's).
            assert (await verifier.verify(good)).identity == "alice@example.com"
        finally:
            await keys.close()
        if case == "kid_path":
            assert all("/" not in r for r in server.requests)


async def test_an_unavailable_key_is_not_fetched_again_at_once() -> None:
    kid = KeyServer.fresh_kid()
    async with KeyServer({}) as server:
        keys = AlbKeys(server.url)
        verifier = AlbVerifier(ALB_ARN, keys)
        try:
            for _ in range(3):
                with pytest.raises(InvalidToken):
                    await verifier.verify(alb_token(new_key(), kid))
            assert server.requests == [kid]
        finally:
            await keys.close()
