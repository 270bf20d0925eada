"""A loopback reverse proxy in front of the moto server, for fault injection over real HTTP.

The agent under test (usually a separate process) points `AIOPS_AWS_ENDPOINT_URL` at the proxy.
Every request is forwarded unchanged to the emulator, and recorded as a `Call`: the service (the
SigV4 credential scope), the operation (`X-Amz-Target` for the JSON protocols, `Action=` in the
form body for the query protocols) and the decoded parameters. A test can then

- count what reached the emulator: `proxy.count("StartInstances")`;
- stall an operation: `stall = proxy.stall("StartInstances")` holds matching requests until
  `stall.release(forward=True)` forwards them (the call reached AWS late) or
  `stall.release(forward=False)` answers them with a 500 (the call was lost on the way);
- fail an operation: `proxy.fail("PutItem", times=3, error="throttle")` answers the next 3
  matching requests with a throttling error (or `error="internal"`: HTTP 500) without forwarding
  them, so botocore's retry logic sees exactly what AWS would send.

A failed or stalled-and-dropped request never reaches the emulator, so a retry of it is clean.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs

import aiohttp
from aiohttp import web

ErrorKind = Literal["internal", "throttle"]
Outcome = Literal["forwarded", "failed", "dropped"]

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
_UPSTREAM_TIMEOUT = aiohttp.ClientTimeout(total=90, connect=5)
"""Longer than any long poll (20 s) and any client read timeout the agent uses."""


@dataclass(frozen=True)
class Call:
    """One request the proxy saw, and what it did with it."""

    service: str
    """The SigV4 signing name: `dynamodb`, `sqs`, `ec2`, ... (`""` if unsigned)."""
    operation: str
    """`PutItem`, `ReceiveMessage`, `StartInstances`; `METHOD /path` for REST protocols."""
    params: Mapping[str, Any]
    """The JSON body, or the form fields (first value of each), or `{}`."""
    at: float
    outcome: Outcome
    status: int
    seconds: float = 0.0
    """How long the emulator took to answer (forwarded calls only)."""


def _matches(
    rule_service: str | None, rule_operation: str | None, service: str, operation: str
) -> bool:
    return (rule_service is None or rule_service == service) and (
        rule_operation is None or rule_operation == operation
    )


@dataclass
class Stall:
    """Holds matching requests until released."""

    service: str | None
    operation: str | None
    _proxy: AwsProxy
    _released: asyncio.Event = field(default_factory=asyncio.Event)
    _forward: bool = True
    held: int = 0
    """How many requests are being held right now."""
    total_held: int = 0
    """How many requests this stall has held in all."""

    def matches(self, service: str, operation: str) -> bool:
        return not self._released.is_set() and _matches(
            self.service, self.operation, service, operation
        )

    async def wait_held(self, count: int = 1, within: float = 30.0) -> None:
        """Until at least `count` requests have been held by this stall."""
        deadline = time.monotonic() + within
        while self.total_held < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"stall {self.service}:{self.operation} held {self.total_held} of {count}"
                )
            await asyncio.sleep(0.05)

    def release(self, *, forward: bool = True) -> None:
        """End the stall: held requests are forwarded (or answered with a 500), later ones pass."""
        self._forward = forward
        self._released.set()
        self._proxy.remove(self)

    async def hold(self) -> bool:
        """Wait for the release; True if the request is to be forwarded."""
        self.held += 1
        self.total_held += 1
        try:
            await self._released.wait()
        finally:
            self.held -= 1
        return self._forward


@dataclass
class Fault:
    """Answers matching requests with an error, `times` times (None: until removed)."""

    service: str | None
    operation: str | None
    times: int | None
    error: ErrorKind
    _proxy: AwsProxy
    failed: int = 0

    def matches(self, service: str, operation: str) -> bool:
        if self.times is not None and self.failed >= self.times:
            return False
        return _matches(self.service, self.operation, service, operation)

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.failed >= self.times

    def remove(self) -> None:
        self._proxy.remove(self)


class AwsProxy:
    """`async with AwsProxy(upstream) as proxy:` ... `proxy.url` is the endpoint to use."""

    def __init__(self, upstream: str, host: str = "127.0.0.1") -> None:
        self.upstream = upstream.rstrip("/")
        self._host = host
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._rules: list[Stall | Fault] = []
        self.calls: list[Call] = []
        self.url = ""

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> AwsProxy:
        self._session = aiohttp.ClientSession(timeout=_UPSTREAM_TIMEOUT, auto_decompress=False)
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://{self._host}:{port}"
        return self

    async def close(self) -> None:
        for rule in list(self._rules):
            if isinstance(rule, Stall):
                rule.release(forward=False)
        self._rules.clear()
        if self._runner is not None:
            async with asyncio.timeout(15):
                await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> AwsProxy:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------ the test's controls

    def stall(self, operation: str | None = None, *, service: str | None = None) -> Stall:
        rule = Stall(service=service, operation=operation, _proxy=self)
        self._rules.insert(0, rule)
        return rule

    def fail(
        self,
        operation: str | None = None,
        *,
        service: str | None = None,
        times: int | None = None,
        error: ErrorKind = "internal",
    ) -> Fault:
        rule = Fault(service=service, operation=operation, times=times, error=error, _proxy=self)
        self._rules.append(rule)
        return rule

    def remove(self, rule: Stall | Fault) -> None:
        with contextlib.suppress(ValueError):
            self._rules.remove(rule)

    def select(
        self,
        operation: str | None = None,
        *,
        service: str | None = None,
        outcome: Outcome | None = "forwarded",
    ) -> list[Call]:
        return [
            c
            for c in self.calls
            if _matches(service, operation, c.service, c.operation)
            and (outcome is None or c.outcome == outcome)
        ]

    def count(
        self,
        operation: str | None = None,
        *,
        service: str | None = None,
        outcome: Outcome | None = "forwarded",
    ) -> int:
        """How many matching requests had `outcome` (default: reached the emulator)."""
        return len(self.select(operation, service=service, outcome=outcome))

    # ------------------------------------------------------------ the proxy itself

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        service = _service(request.headers.get("Authorization", ""))
        operation, params, protocol = _operation(request, body)
        for rule in list(self._rules):
            if not rule.matches(service, operation):
                continue
            if isinstance(rule, Fault):
                rule.failed += 1
                response = _error_response(protocol, rule.error)
                self._record(service, operation, params, "failed", response.status)
                return response
            if not await rule.hold():
                response = _error_response(protocol, "internal")
                self._record(service, operation, params, "dropped", response.status)
                return response
            break
        return await self._forward(request, body, service, operation, params)

    async def _forward(
        self,
        request: web.Request,
        body: bytes,
        service: str,
        operation: str,
        params: Mapping[str, Any],
    ) -> web.Response:
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        started = time.monotonic()
        async with self._session.request(
            request.method,
            self.upstream + request.rel_url.raw_path_qs,
            headers=headers,
            data=body,
            allow_redirects=False,
        ) as upstream:
            payload = await upstream.read()
            out_headers = {
                k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP
            }
            status = upstream.status
        self._record(service, operation, params, "forwarded", status, time.monotonic() - started)
        return web.Response(status=status, body=payload, headers=out_headers)

    def _record(
        self,
        service: str,
        operation: str,
        params: Mapping[str, Any],
        outcome: Outcome,
        status: int,
        seconds: float = 0.0,
    ) -> None:
        call = Call(service, operation, params, time.monotonic(), outcome, status, seconds)
        self.calls.append(call)


# ---------------------------------------------------------------- request and error shapes


def _service(authorization: str) -> str:
    """`sqs` from `AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/sqs/aws4_request, ...`."""
    marker = "Credential="
    start = authorization.find(marker)
    if start < 0:
        return ""
    scope = authorization[start + len(marker) :].split(",", 1)[0].split("/")
    return scope[3] if len(scope) >= 5 else ""


Protocol = Literal["json", "ec2", "query", "rest"]


def _operation(request: web.Request, body: bytes) -> tuple[str, dict[str, Any], Protocol]:
    target = request.headers.get("X-Amz-Target")
    if target:
        try:
            params = json.loads(body) if body else {}
        except ValueError:
            params = {}
        return target.rsplit(".", 1)[-1], params if isinstance(params, dict) else {}, "json"
    if request.content_type == "application/x-www-form-urlencoded":
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        action = form.get("Action", "")
        signed_for = _service(request.headers.get("Authorization", ""))
        protocol: Protocol = "ec2" if signed_for == "ec2" else "query"
        return action, form, protocol
    return f"{request.method} {request.path}", {}, "rest"


def _error_response(protocol: Protocol, kind: ErrorKind) -> web.Response:
    request_id = str(uuid.uuid4())
    if kind == "throttle":
        status, message = 400, "Rate exceeded (injected by the test proxy)"
        code = {"json": "ThrottlingException", "rest": "ThrottlingException"}.get(
            protocol, "Throttling"
        )
        if protocol == "ec2":
            status, code = 503, "RequestLimitExceeded"
    else:
        status, message = 500, "We encountered an internal error (injected by the test proxy)"
        code = "InternalError" if protocol == "ec2" else "InternalFailure"
    if protocol in ("json", "rest"):
        return web.Response(
            status=status,
            body=json.dumps({"__type": code, "message": message}).encode(),
            headers={
                "Content-Type": "application/x-amz-json-1.0",
                "x-amzn-ErrorType": code,
                "x-amzn-RequestId": request_id,
            },
        )
    if protocol == "ec2":
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error>'
            f"<Code>{code}</Code><Message>{message}</Message></Error></Errors>"
            f"<RequestID>{request_id}</RequestID></Response>"
        )
    else:
        xml = (
            "<ErrorResponse><Error><Type>Receiver</Type>"
            f"<Code>{code}</Code><Message>{message}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        )
    return web.Response(status=status, body=xml.encode(), content_type="text/xml")
