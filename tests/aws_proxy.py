"""A loopback reverse proxy in front of the moto server: fault injection and AWS realism over HTTP.

The agent under test (usually a separate process) points `AIOPS_AWS_ENDPOINT_URL` at the proxy.
Every request is forwarded to the emulator and recorded as a `Call`: the service (the SigV4
credential scope), the operation (`X-Amz-Target` for the JSON protocols, `Action=` in the form
body for the query protocols) and the decoded parameters.

Rules, switched on per scenario, sit between the agent and the emulator. Each matching rule sees
the request in turn and may answer it itself, hold it, change it, or pass it on and change the
answer (`Rule.apply`); the last step is the emulator. The controls:

- `proxy.count("StartInstances")`, `proxy.select(...)`: what reached the emulator;
- `proxy.stall(op)`: hold matching requests until `stall.release(forward=True|False)`;
- `proxy.fail(op, times=3, error="throttle")`, or `for_seconds=60` (an outage): answer with the
  error AWS sends (see `ERRORS`: throttle, internal, unavailable, access_denied, kms_throttle,
  kms_access_denied) or drop the connection (`network`), without forwarding;
- realism (tests/aws_realism.py, each documented against AWS's own words):
  `proxy.stale_reads(op, ...)` (eventual consistency), `proxy.codebuild(...)` (builds that take
  time, fail or time out, tokens that expire), `proxy.insights(...)` (queries that stay
  Running, the concurrency limit, StopQuery), `proxy.unprocessed(op, ...)` (UnprocessedKeys,
  UnprocessedItems, SQS batch `Failed` entries), `proxy.state_reason(instance_id, ...)`
  (DescribeInstances `StateReason` / `StateTransitionReason`), `proxy.transform(op, fn)` (any
  other rewrite of an answer).

A failed or stalled-and-dropped request never reaches the emulator, so a retry of it is clean.
`Call.outcome` says what happened: `forwarded` (reached the emulator, perhaps changed on the way),
`failed` (an injected error), `dropped` (a stall released without forwarding) or `served`
(answered by a realism rule alone: a stale read, a query still Running, a LimitExceeded).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qs

import aiohttp
from aiohttp import web

from tests.aws_realism import (
    CodeBuild,
    Insights,
    StaleReads,
    StateReason,
    Transform,
    Unprocessed,
)
from tests.aws_rules import (
    ERRORS,
    ErrorKind,
    Exchange,
    Outcome,
    Proceed,
    Protocol,
    Reply,
    Rule,
    error_reply,
    op_set,
)

__all__ = ["ERRORS", "AwsProxy", "Call", "ErrorKind", "Exchange", "Fault", "Reply", "Rule", "Stall"]

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
R = TypeVar("R", bound=Rule)
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


class Stall(Rule):
    """Holds matching requests until released."""

    def __init__(self, proxy: AwsProxy, operation: str | None, service: str | None) -> None:
        self.service = service
        self.operation = operation
        self.operations = op_set(operation)
        self._proxy = proxy
        self._released = asyncio.Event()
        self._forward = True
        self.held = 0
        """How many requests are being held right now."""
        self.total_held = 0
        """How many requests this stall has held in all."""

    def matches(self, ex: Exchange) -> bool:
        return not self._released.is_set() and super().matches(ex)

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

    async def apply(self, ex: Exchange, proceed: Proceed) -> Reply:
        self.held += 1
        self.total_held += 1
        try:
            await self._released.wait()
        finally:
            self.held -= 1
        if self._forward:
            return await proceed(ex)
        ex.outcome = "dropped"
        return error_reply(ex.protocol, ex.service, "internal")


class Fault(Rule):
    """Answers matching requests with an error, `times` times and/or for `for_seconds` (None
    for both: until removed)."""

    def __init__(
        self,
        proxy: AwsProxy,
        operation: str | Iterable[str] | None,
        service: str | None,
        times: int | None,
        error: ErrorKind,
        for_seconds: float | None,
    ) -> None:
        self.service = service
        self.operation = operation if isinstance(operation, str) or operation is None else None
        self.operations = op_set(operation)
        self.times = times
        self.error: ErrorKind = error
        self.until = None if for_seconds is None else time.monotonic() + for_seconds
        self._proxy = proxy
        self.failed = 0

    @property
    def exhausted(self) -> bool:
        return (self.times is not None and self.failed >= self.times) or (
            self.until is not None and time.monotonic() >= self.until
        )

    def matches(self, ex: Exchange) -> bool:
        return not self.exhausted and super().matches(ex)

    def remove(self) -> None:
        self._proxy.remove(self)

    async def apply(self, ex: Exchange, proceed: Proceed) -> Reply:
        self.failed += 1
        ex.outcome = "failed"
        if self.error == "network":
            raise _DropConnection
        return error_reply(ex.protocol, ex.service, self.error)


class _DropConnection(Exception):
    """Close the client's connection without an answer (a network failure)."""


class AwsProxy:
    """`async with AwsProxy(upstream) as proxy:` ... `proxy.url` is the endpoint to use."""

    def __init__(self, upstream: str, host: str = "127.0.0.1") -> None:
        self.upstream = upstream.rstrip("/")
        self._host = host
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._rules: list[Rule] = []
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

    # ------------------------------------------------------------ the test's controls: faults

    def add(self, rule: Rule, *, first: bool = False) -> Rule:
        """Switch a rule on (rules apply in order; `first` puts it before the others)."""
        if first:
            self._rules.insert(0, rule)
        else:
            self._rules.append(rule)
        return rule

    def remove(self, rule: Rule) -> None:
        with contextlib.suppress(ValueError):
            self._rules.remove(rule)

    def stall(self, operation: str | None = None, *, service: str | None = None) -> Stall:
        rule = Stall(self, operation, service)
        self.add(rule, first=True)
        return rule

    def fail(
        self,
        operation: str | Iterable[str] | None = None,
        *,
        service: str | None = None,
        times: int | None = None,
        error: ErrorKind = "internal",
        for_seconds: float | None = None,
    ) -> Fault:
        """Answer matching requests with `error` (see `ERRORS`), `times` times and/or for
        `for_seconds`; neither: until `fault.remove()`."""
        rule = Fault(self, operation, service, times, error, for_seconds)
        self.add(rule)
        return rule

    # ------------------------------------------------------------ the test's controls: realism

    def stale_reads(
        self,
        operation: str | Iterable[str],
        *,
        after: str | Iterable[str] | None = None,
        seconds: float = 5.0,
        reads: int | None = None,
        service: str | None = None,
    ) -> StaleReads:
        """After a write (`after`; default: any non-read call of the same service), matching
        reads answer what they answered before it, for `seconds` (and at most `reads` times)."""
        return self._added(StaleReads(operation, after, seconds, reads, service))

    def insights(
        self,
        *,
        running_for: float = 0.0,
        polls: int | None = None,
        concurrency: int | None = None,
        final_status: str = "Complete",
    ) -> Insights:
        """Logs Insights as AWS runs it: queries stay Running (`running_for` seconds, or until
        polled `polls` times), StartQuery fails with LimitExceededException past `concurrency`
        running queries, StopQuery cancels, a query may end `Failed` or `Timeout`."""
        return self._added(Insights(running_for, polls, concurrency, final_status))

    def unprocessed(
        self,
        operation: str,
        *,
        count: int = 1,
        times: int | None = 1,
        code: str = "InternalError",
    ) -> Unprocessed:
        """A batch call processes all but its last `count` entries: BatchGetItem
        `UnprocessedKeys`, BatchWriteItem `UnprocessedItems`, SQS `*Batch` `Failed` entries."""
        return self._added(Unprocessed(operation, count, times, code))

    def state_reason(
        self,
        instance_id: str,
        *,
        code: str | None = None,
        message: str | None = None,
        transition_reason: str | None = None,
        states: Iterable[str] | None = None,
    ) -> StateReason:
        """DescribeInstances reports this `StateReason` (code, message) and/or
        `StateTransitionReason` for the instance, whatever the emulator says (with `states`:
        only while the instance is in one of them)."""
        return self._added(StateReason(instance_id, code, message, transition_reason, states))

    def codebuild(
        self,
        *,
        running_for: float = 0.0,
        final_status: str = "SUCCEEDED",
        token_seconds: float = 300.0,
    ) -> CodeBuild:
        """CodeBuild as AWS runs it: builds IN_PROGRESS for `running_for` seconds, then
        `final_status` (SUCCEEDED, FAILED, TIMED_OUT, ...); StopBuild stops one; an idempotency
        token dedupes StartBuild for `token_seconds` (5 minutes); `expire_tokens()` ends that."""
        return self._added(CodeBuild(running_for, final_status, token_seconds))

    def transform(
        self,
        operation: str | Iterable[str],
        fn: Callable[[Exchange, Reply], Reply],
        *,
        service: str | None = None,
    ) -> Transform:
        """Rewrite the emulator's answer to matching requests with `fn(exchange, reply)`."""
        return self._added(Transform(operation, fn, service))

    def _added(self, rule: R) -> R:
        self.add(rule)
        return rule

    # ------------------------------------------------------------ what happened

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
            if (service is None or service == c.service)
            and (operation is None or operation == c.operation)
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
        ex = Exchange(request, body, service, operation, params, protocol)
        rules = [r for r in self._rules if r.matches(ex)]
        try:
            reply = await self._chain(ex, rules)
        except _DropConnection:
            self._record(ex, 0)
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=500)
        self._record(ex, reply.status)
        return web.Response(status=reply.status, body=reply.body, headers=reply.headers)

    async def _chain(self, ex: Exchange, rules: list[Rule]) -> Reply:
        if not rules:
            return await self._forward(ex)

        async def proceed(next_ex: Exchange) -> Reply:
            return await self._chain(next_ex, rules[1:])

        return await rules[0].apply(ex, proceed)

    async def _forward(self, ex: Exchange) -> Reply:
        assert self._session is not None
        request = ex.request
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        started = time.monotonic()
        async with self._session.request(
            request.method,
            self.upstream + request.rel_url.raw_path_qs,
            headers=headers,
            data=ex.body,
            allow_redirects=False,
        ) as upstream:
            payload = await upstream.read()
            out_headers = {
                k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP
            }
            status = upstream.status
        ex.outcome = "forwarded"
        ex.seconds = time.monotonic() - started
        return Reply(status, payload, out_headers)

    def _record(self, ex: Exchange, status: int) -> None:
        self.calls.append(
            Call(
                ex.service,
                ex.operation,
                ex.params,
                time.monotonic(),
                ex.outcome,
                status,
                ex.seconds,
            )
        )


# ---------------------------------------------------------------- request shapes


def _service(authorization: str) -> str:
    """`sqs` from `AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/sqs/aws4_request, ...`."""
    marker = "Credential="
    start = authorization.find(marker)
    if start < 0:
        return ""
    scope = authorization[start + len(marker) :].split(",", 1)[0].split("/")
    return scope[3] if len(scope) >= 5 else ""


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
