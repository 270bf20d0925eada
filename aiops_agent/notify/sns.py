"""Notifiers: SNS for production, the log for paths without a topic.

Both implement the `Notifier` port. SNS is strict about subjects (ASCII, no line breaks or control
characters, under 100 characters) and message attributes; what we publish is made to fit rather
than refused, because a notification about an incident must not fail over its formatting.
"""

from __future__ import annotations

import re
import unicodedata
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

import structlog

from aiops_agent.aws.clients import AwsClients

log = structlog.get_logger(__name__)

MAX_SUBJECT = 99
"""SNS: "less than 100 characters"."""
MAX_MESSAGE_BYTES = 256 * 1024 - 4096
"""SNS accepts 256 KiB per publish, attributes included: keep a margin for them."""
MAX_ATTRIBUTES = 10
"""SQS, the usual subscriber, takes at most 10 message attributes."""
DEFAULT_SUBJECT = "aiops-agent notification"

_ATTR_NAME = re.compile(r"^(?!aws\.|amazon\.)[A-Za-z0-9_\-](?:[A-Za-z0-9_\-.]{0,254})$", re.I)
_SPACES = re.compile(r"\s+")


def sanitize_subject(subject: str) -> str:
    """`subject` as SNS accepts it: printable ASCII on one line, at most 99 characters."""
    ascii_text = unicodedata.normalize("NFKD", subject).encode("ascii", "ignore").decode()
    one_line = _SPACES.sub(" ", ascii_text)
    printable = "".join(ch for ch in one_line if ch.isprintable()).strip()
    if not printable:
        return DEFAULT_SUBJECT
    if len(printable) > MAX_SUBJECT:
        printable = printable[: MAX_SUBJECT - 3].rstrip() + "..."
    return printable


def truncate_message(message: str) -> str:
    """`message` cut to SNS's size limit on a character boundary, with a marker when cut."""
    data = message.encode()
    if len(data) <= MAX_MESSAGE_BYTES:
        return message or " "
    marker = "\n[truncated]"
    return data[: MAX_MESSAGE_BYTES - len(marker)].decode(errors="ignore") + marker


def message_attributes(attributes: Mapping[str, str] | None) -> dict[str, dict[str, str]]:
    """SNS `MessageAttributes` from plain strings; names SNS would refuse are dropped."""
    out: dict[str, dict[str, str]] = {}
    for name, value in (attributes or {}).items():
        text = str(value)
        if not text or not _ATTR_NAME.match(name) or ".." in name or name.endswith("."):
            log.warning("notify.attribute_dropped", attribute=name)
            continue
        if len(out) == MAX_ATTRIBUTES:
            log.warning("notify.attribute_dropped", attribute=name, reason="too_many")
            continue
        out[name] = {"DataType": "String", "StringValue": text}
    return out


@dataclass(frozen=True)
class Notification:
    subject: str
    message: str
    attributes: Mapping[str, str] = field(default_factory=dict)


class LogNotifier:
    """Logs each notification; keeps the last `keep` in `sent` for tests and the demo."""

    def __init__(self, keep: int = 100) -> None:
        self.sent: deque[Notification] = deque(maxlen=keep)

    async def publish(
        self, subject: str, message: str, attributes: Mapping[str, str] | None = None
    ) -> None:
        note = Notification(sanitize_subject(subject), message, dict(attributes or {}))
        self.sent.append(note)
        log.info("notify.logged", subject=note.subject, message=message, attributes=note.attributes)


class SnsNotifier:
    """Publishes to `topic_arn`; with no topic configured, logs instead (and does not fail)."""

    def __init__(self, clients: AwsClients, topic_arn: str | None) -> None:
        self._clients = clients
        self.topic_arn = topic_arn
        self._fallback = LogNotifier(keep=10)

    async def publish(
        self, subject: str, message: str, attributes: Mapping[str, str] | None = None
    ) -> None:
        if not self.topic_arn:
            await self._fallback.publish(subject, message, attributes)
            return
        sns = await self._clients.client("sns")
        clean_subject = sanitize_subject(subject)
        resp = await sns.publish(
            TopicArn=self.topic_arn,
            Subject=clean_subject,
            Message=truncate_message(message),
            MessageAttributes=message_attributes(attributes),
        )
        log.info(
            "notify.published",
            topic_arn=self.topic_arn,
            subject=clean_subject,
            message_id=resp.get("MessageId"),
        )
