"""The outside shape of an event: decoding, the EventBridge envelope, and rejection.

Everything here treats the payload as untrusted data. Decoding never raises anything but
`InvalidEvent`, whose `reason` is one of a small fixed set (it labels a metric and picks the
`explain` exit code), and whose message is one line that echoes no large piece of the input.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from aiops_agent.domain.models import NormalizedEvent

InvalidReason = Literal[
    "not_json",
    "not_object",
    "too_large",
    "not_eventbridge",
    "unsupported",
    "missing_field",
    "invalid_field",
]

CLOUDTRAIL_DETAIL_TYPE = "AWS API Call via CloudTrail"
MAX_EVENT_BYTES = 262_144
"""EventBridge caps an event at 256 KiB (SQS a message too): anything larger is not an event."""
MAX_DEPTH = 64
"""Real events nest a dozen levels at most; deeper is junk, and is refused before any walk."""
DEFAULT_REGION = "us-east-1"


class InvalidEvent(Exception):
    """The payload is not an event this agent can judge. `reason` is a short machine label."""

    def __init__(self, reason: InvalidReason, message: str) -> None:
        super().__init__(message)
        self.reason: InvalidReason = reason
        self.message = message

    def __str__(self) -> str:
        return f"invalid event ({self.reason}): {self.message}"


class EventBridgeEnvelope(BaseModel):
    """An EventBridge event as delivered to a target, validated but not yet resolved.

    `account` is optional (moto's EventBridge omits it), so is `version`; `id` and `time` are
    optional here because hand-written and trimmed samples lack them: `resolve` fills them in.
    `source` too, when the detail-type names it (`normalize` infers it from the registry).
    `detail` may arrive as a JSON object in a string: EventBridge Scheduler sends `"{}"`.
    """

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    id: str | None = None
    source: str | None = Field(default=None, min_length=1, max_length=256)
    detail_type: str = Field(alias="detail-type", min_length=1, max_length=256)
    time: str | None = None
    region: str | None = None
    account: str | None = None
    version: str | None = None
    resources: list[str] = Field(default_factory=list)
    detail: dict[str, Any]
    replay_name: str | None = Field(default=None, alias="replay-name")

    @field_validator("detail", mode="before")
    @classmethod
    def _detail_in_a_string(cls, value: object) -> object:
        """`"{}"` (EventBridge Scheduler) and any JSON object sent as a string: decoded once."""
        if not isinstance(value, str):
            return value
        if not value.strip():
            return {}
        try:
            decoded = json.loads(value, parse_constant=_no_constant)
        except (ValueError, RecursionError):
            return value  # not JSON: left for the dict check to refuse
        if isinstance(decoded, dict):
            check_depth(decoded)
        return decoded


@dataclass(frozen=True)
class Envelope:
    """A resolved envelope: every field the normalizers need is present."""

    event_id: str
    source: str
    detail_type: str
    time: datetime
    region: str
    account: str | None
    resources: tuple[str, ...]
    detail: Mapping[str, Any]
    replay_name: str | None = None
    notes: Mapping[str, Any] = field(default_factory=dict)
    """Facts about how the envelope was resolved (e.g. `time_source`), copied into `details`."""

    @property
    def replayed(self) -> bool:
        return self.replay_name is not None

    def normalized(
        self,
        *,
        resource_type: str,
        resource_id: str,
        action: str,
        details: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> NormalizedEvent:
        """A `NormalizedEvent` about one resource, with the envelope's common fields."""
        merged: dict[str, Any] = dict(self.notes)
        if self.replay_name is not None:
            merged["replay_name"] = clip(self.replay_name)
        merged.update(details or {})
        return NormalizedEvent(
            event_id=self.event_id,
            source=self.source,
            detail_type=self.detail_type,
            resource_type=resource_type,
            resource_id=resource_id,
            region=self.region,
            account=self.account,
            action=action,
            time=self.time,
            replayed=self.replayed,
            details=merged,
            **fields,
        )


def parse_event(
    body: str | bytes | bytearray | Mapping[str, Any],
    *,
    received_at: datetime | None = None,
    default_region: str = DEFAULT_REGION,
) -> list[NormalizedEvent]:
    """One payload in, one `NormalizedEvent` per resource out; `InvalidEvent` otherwise.

    The entry point of intake (see `normalize.parse_event`, where dispatch lives; imported here
    lazily because every normalizer module imports this one).
    """
    from aiops_agent.intake.normalize import parse_event as _parse_event

    return _parse_event(body, received_at=received_at, default_region=default_region)


# ---------------------------------------------------------------- decoding


def decode_body(body: str | bytes | bytearray | Mapping[str, Any]) -> dict[str, Any]:
    """The payload as a JSON object of bounded size and depth, or `InvalidEvent`."""
    if isinstance(body, Mapping):
        value: object = dict(body)
    else:
        value = _loads(_text_of(body))
    if not isinstance(value, dict):
        raise InvalidEvent("not_object", f"event must be a JSON object, got a JSON {_kind(value)}")
    check_depth(value)
    return value


def _text_of(body: object) -> str:
    if isinstance(body, bytes | bytearray):
        if len(body) > MAX_EVENT_BYTES:
            raise InvalidEvent("too_large", f"event is {len(body)} bytes, over {MAX_EVENT_BYTES}")
        try:
            return bytes(body).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InvalidEvent("not_json", f"event is not UTF-8 text ({exc.reason})") from None
    if isinstance(body, str):
        text = body.removeprefix("\ufeff")
        size = (
            len(text) if len(text) * 4 <= MAX_EVENT_BYTES else len(text.encode("utf-8", "replace"))
        )
        if size > MAX_EVENT_BYTES:
            raise InvalidEvent("too_large", f"event is {size} bytes, over {MAX_EVENT_BYTES}")
        return text
    raise InvalidEvent("not_object", f"event must be JSON text or an object, not {_kind(body)}")


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _loads(text: str) -> object:
    try:
        return json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise InvalidEvent(
            "not_json",
            f"event is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
        ) from None
    except RecursionError:
        raise InvalidEvent("too_large", f"event JSON is nested deeper than {MAX_DEPTH}") from None
    except ValueError as exc:  # NaN/Infinity, an integer of more than 4300 digits
        raise InvalidEvent("not_json", f"event is not valid JSON: {clip(exc, 120)}") from None


def check_depth(value: object, limit: int = MAX_DEPTH) -> None:
    """`InvalidEvent("too_large")` if objects and arrays nest deeper than `limit` (no recursion)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            raise InvalidEvent("too_large", f"event is nested deeper than {limit} levels")
        children: Iterable[object]
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        for child in children:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))


def _kind(value: object) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    return type(value).__name__


def validate_envelope(payload: Mapping[str, Any]) -> EventBridgeEnvelope:
    try:
        return EventBridgeEnvelope.model_validate(payload)
    except ValidationError as exc:
        raise from_validation_error(exc, "EventBridge event") from None


def from_validation_error(exc: ValidationError, what: str) -> InvalidEvent:
    """One line naming the first bad field; the input's values are not echoed."""
    first = exc.errors(include_input=False, include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"]) or "(root)"
    if first["type"] == "missing":
        return InvalidEvent("missing_field", f"{what}: field '{where}' is missing")
    return InvalidEvent("invalid_field", f"{what}: field '{where}': {first['msg']}")


# ---------------------------------------------------------------- small helpers


_FRACTION = re.compile(r"(\.\d{6})\d+")
_TZ_COMPACT = re.compile(r"([+-]\d{2})(\d{2})$")


def parse_time(value: object) -> datetime | None:
    """A timezone-aware UTC datetime from the shapes AWS and its samples use, else None.

    ISO 8601 with `Z`, a space instead of `T`, nanoseconds, `+0000`, naive (taken as UTC),
    RFC 1123 (`Fri, 10 Mar 2023 12:03:38 GMT`, AWS Health), and epoch seconds or milliseconds.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 1e11 else value
        try:
            return datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str) or not value.strip() or len(value) > 64:
        return None
    text = value.strip()
    iso = text[:-1] + "+00:00" if text[-1] in "Zz" else text
    iso = _TZ_COMPACT.sub(r"\1:\2", _FRACTION.sub(r"\1", iso.replace(" ", "T", 1)))
    parsed: datetime
    try:
        parsed = datetime.fromisoformat(iso)
    except ValueError:
        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def content_id(payload: Mapping[str, Any]) -> str:
    """A deterministic id for a payload that carries none: a redelivery maps onto the same id."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256-" + hashlib.sha256(canonical.encode()).hexdigest()[:32]


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def clip(value: object, limit: int = 256) -> str:
    """Untrusted text made safe to show: no control characters, bounded length."""
    text = _CONTROL.sub(" ", str(value)).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def text_field(value: object, limit: int = 256) -> str:
    """A scalar field as clean text ('' when absent or not a scalar)."""
    if value is None or isinstance(value, dict | list | bool):
        return ""
    return clip(value, limit)
