"""The proxy's building blocks: what a rule sees (`Exchange`), what it answers (`Reply`), and the
errors AWS sends, per protocol, so that botocore's parsing and retry logic see what they would see
from AWS (error codes from each service's API reference and the AWS common errors list).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

Protocol = Literal["json", "ec2", "query", "rest"]
Outcome = Literal["forwarded", "failed", "dropped", "served"]
ErrorKind = Literal[
    "throttle",
    "internal",
    "unavailable",
    "access_denied",
    "kms_throttle",
    "kms_access_denied",
    "network",
]


@dataclass(frozen=True)
class AwsError:
    status: int
    code: str
    """The JSON `__type` (or the XML `<Code>`)."""
    query_code: str | None = None
    """For JSON services that kept their query-protocol codes (SQS): `x-amzn-query-error`."""
    message: str = ""


ERRORS: dict[ErrorKind, dict[Protocol, AwsError]] = {
    # Common errors: ThrottlingException 400, InternalFailure 500, ServiceUnavailable 503,
    # AccessDeniedException 400 (JSON) / AccessDenied 403 (query). EC2 has its own spellings:
    # RequestLimitExceeded 503, InternalError 500, Unavailable 503, UnauthorizedOperation 403.
    "throttle": {
        "json": AwsError(400, "ThrottlingException", None, "Rate exceeded"),
        "rest": AwsError(400, "ThrottlingException", None, "Rate exceeded"),
        "query": AwsError(400, "Throttling", None, "Rate exceeded"),
        "ec2": AwsError(503, "RequestLimitExceeded", None, "Request limit exceeded."),
    },
    "internal": {
        "json": AwsError(500, "InternalFailure", None, "We encountered an internal error"),
        "rest": AwsError(500, "InternalFailure", None, "We encountered an internal error"),
        "query": AwsError(500, "InternalFailure", None, "We encountered an internal error"),
        "ec2": AwsError(500, "InternalError", None, "An internal error has occurred"),
    },
    "unavailable": {
        "json": AwsError(503, "ServiceUnavailable", None, "Service is unavailable"),
        "rest": AwsError(503, "ServiceUnavailable", None, "Service is unavailable"),
        "query": AwsError(503, "ServiceUnavailable", None, "Service is unavailable"),
        "ec2": AwsError(503, "Unavailable", None, "The server is overloaded"),
    },
    "access_denied": {
        "json": AwsError(400, "AccessDeniedException", "AccessDenied", "not authorized"),
        "rest": AwsError(403, "AccessDeniedException", None, "not authorized"),
        "query": AwsError(403, "AccessDenied", None, "not authorized"),
        "ec2": AwsError(403, "UnauthorizedOperation", None, "You are not authorized"),
    },
    # SQS with SSE-KMS (SendMessage): KmsThrottled / KmsAccessDenied, whose query-protocol codes
    # are KMS.ThrottlingException / KMS.AccessDeniedException. SNS and Kinesis spell them
    # KMSThrottlingException / KMSAccessDeniedException.
    "kms_throttle": {
        p: AwsError(400, "KmsThrottled", "KMS.ThrottlingException", "KMS throttled the request")
        for p in ("json", "rest", "query", "ec2")
    },
    "kms_access_denied": {
        p: AwsError(400, "KmsAccessDenied", "KMS.AccessDeniedException", "no KMS access")
        for p in ("json", "rest", "query", "ec2")
    },
}
_SNS_KMS = {"KmsThrottled": "KMSThrottlingException", "KmsAccessDenied": "KMSAccessDeniedException"}


def error_reply(protocol: Protocol, service: str, kind: ErrorKind) -> Reply:
    """The answer AWS gives for `kind` on `service` over `protocol` (not for `network`)."""
    err = ERRORS[kind][protocol]
    request_id = str(uuid.uuid4())
    message = f"{err.message} (injected by the test proxy)"
    if protocol in ("json", "rest"):
        headers = {
            "Content-Type": "application/x-amz-json-1.0",
            "x-amzn-ErrorType": err.code,
            "x-amzn-RequestId": request_id,
        }
        if err.query_code and service == "sqs":
            headers["x-amzn-query-error"] = f"{err.query_code};Sender"
        body = json.dumps({"__type": err.code, "message": message}).encode()
        return Reply(err.status, body, headers)
    code = _SNS_KMS.get(err.code, err.code) if service == "sns" else err.code
    if protocol == "ec2":
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error>'
            f"<Code>{code}</Code><Message>{message}</Message></Error></Errors>"
            f"<RequestID>{request_id}</RequestID></Response>"
        )
    else:
        xml = (
            "<ErrorResponse><Error><Type>Sender</Type>"
            f"<Code>{code}</Code><Message>{message}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        )
    return Reply(err.status, xml.encode(), {"Content-Type": "text/xml"})


def json_error(status: int, code: str, message: str) -> Reply:
    """A JSON-protocol error of the service's own (LimitExceededException, ...)."""
    return Reply(
        status,
        json.dumps({"__type": code, "message": message}).encode(),
        {
            "Content-Type": "application/x-amz-json-1.1",
            "x-amzn-ErrorType": code,
            "x-amzn-RequestId": str(uuid.uuid4()),
        },
    )


@dataclass
class Reply:
    """An HTTP answer on its way back to the agent."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body) if self.body else {}

    def with_json(self, data: Any) -> Reply:
        """The same answer with a new JSON body (checksums of the old body dropped)."""
        headers = {k: v for k, v in self.headers.items() if k.lower() != "x-amz-crc32"}
        return Reply(self.status, json.dumps(data).encode(), headers)

    def with_body(self, body: bytes) -> Reply:
        headers = {k: v for k, v in self.headers.items() if k.lower() != "x-amz-crc32"}
        return Reply(self.status, body, headers)

    @classmethod
    def of_json(cls, data: Any, status: int = 200) -> Reply:
        return cls(
            status,
            json.dumps(data).encode(),
            {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": "proxy"},
        )


@dataclass
class Exchange:
    """One request in the rule chain. `outcome` is set by whoever answers it."""

    request: web.Request
    body: bytes
    service: str
    operation: str
    params: dict[str, Any]
    protocol: Protocol
    outcome: Outcome = "forwarded"
    seconds: float = 0.0

    def with_json_params(self, params: dict[str, Any]) -> Exchange:
        """The same request with a new JSON body (for rules that forward part of a batch)."""
        self.params = params
        self.body = json.dumps(params).encode()
        return self


Proceed = Callable[[Exchange], Awaitable[Reply]]


class Rule:
    """A piece of behaviour switched on for matching requests. Subclasses override `apply`."""

    service: str | None = None
    operations: frozenset[str] | None = None
    """None: every operation."""

    def matches(self, ex: Exchange) -> bool:
        return (self.service is None or self.service == ex.service) and (
            self.operations is None or ex.operation in self.operations
        )

    async def apply(self, ex: Exchange, proceed: Proceed) -> Reply:
        return await proceed(ex)


def op_set(operation: str | Iterable[str] | None) -> frozenset[str] | None:
    if operation is None:
        return None
    return frozenset({operation} if isinstance(operation, str) else operation)
