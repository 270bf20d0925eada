"""What the log analyzer keeps in the patterns table (hash `pk`, range `sk`, TTL `expires_at`).

One partition per log group, `pk = "loggroup#<name>"`:

| sk              | what                                                                        |
|-----------------|-----------------------------------------------------------------------------|
| `lease`         | which replica analyzes the group, until when (conditional write)            |
| `window`        | the watermark (end of the last analyzed window), the overlap's counts, and   |
|                 | how many windows the group has; advanced only from the value that was read  |
| `tpl#<id>`      | one template: its text, its detector state, when it last alerted            |

and one partition for the scan budget shared by the replicas, `pk = "logscan#budget"`,
`sk = <UTC day>`, attribute `bytes` (an atomic `ADD` per window).

The watermark write is the commit of a window: two replicas that somehow both hold the lease
cannot both advance it, so each window is analyzed (and alerted on) once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog
from botocore.exceptions import ClientError

from aiops_agent.aws.clients import AwsClients
from aiops_agent.domain.ports import ConflictError
from aiops_agent.logs.mining import MINER_VERSION

log = structlog.get_logger(__name__)

CALL_TIMEOUT_S = 15.0
TEMPLATE_TTL_S = 30 * 86400
"""A template unseen for 30 days expires with its baseline."""
MAX_TEMPLATE_CHARS = 1000
MAX_TAIL_KEYS = 2000
BUDGET_PARTITION = "logscan#budget"
"""One item per UTC day (`sk`): the bytes every replica's log queries scanned that day."""


def partition(group: str) -> str:
    return f"loggroup#{group}"


def message_key(message: str) -> str:
    """Short stable key of a message, for the overlap de-duplication counts."""
    return hashlib.sha1(message.encode()).hexdigest()[:16]


@dataclass
class WindowMark:
    watermark_ms: int | None = None
    """End (exclusive) of the last analyzed window; None before the first."""
    tail: dict[str, int] = field(default_factory=dict)
    """message_key -> count already taken from [watermark - overlap, watermark)."""
    windows: int = 0
    """Windows analyzed for this group so far."""
    miner_version: int = MINER_VERSION
    """The template miner's version that analyzed them (1 when the item predates the field)."""
    pending_alert: dict[str, Any] | None = None
    """The proactive alert decided with the last window and stored with its watermark, until
    SNS took it (`subject`, `message`, `attributes`, `templates`): a Publish that failed is sent
    again before the group's next window, not lost."""


@dataclass
class TemplateRecord:
    template_id: str
    template: str
    detector: dict[str, Any]
    last_alert_ms: int = 0
    last_seen_ms: int = 0


def _pending(item: Mapping[str, Any]) -> dict[str, Any] | None:
    raw = item.get("pending_alert", {}).get("S")
    if not raw:
        return None
    loaded = json.loads(raw)
    return loaded if isinstance(loaded, dict) else None


def _n(value: Any, default: int = 0) -> int:
    try:
        return int(value["N"])
    except (KeyError, TypeError, ValueError):
        return default


class PatternStore:
    def __init__(self, clients: AwsClients, table: str) -> None:
        self._clients = clients
        self.table = table

    async def _ddb(self) -> Any:
        return await self._clients.client("dynamodb")

    # -- leases ------------------------------------------------------------------------------

    async def acquire_lease(self, group: str, owner: str, ttl_s: float, now_ms: int) -> bool:
        """Take or renew the group's lease; False while another owner holds a live one."""
        ddb = await self._ddb()
        until = now_ms + int(ttl_s * 1000)
        try:
            await asyncio.wait_for(
                ddb.put_item(
                    TableName=self.table,
                    Item={
                        "pk": {"S": partition(group)},
                        "sk": {"S": "lease"},
                        "owner": {"S": owner},
                        "lease_until_ms": {"N": str(until)},
                        "expires_at": {"N": str(until // 1000 + 86400)},
                    },
                    ConditionExpression=(
                        "attribute_not_exists(pk) OR lease_until_ms < :now OR #o = :me"
                    ),
                    ExpressionAttributeNames={"#o": "owner"},
                    ExpressionAttributeValues={
                        ":now": {"N": str(now_ms)},
                        ":me": {"S": owner},
                    },
                ),
                CALL_TIMEOUT_S,
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    async def release_lease(self, group: str, owner: str) -> None:
        ddb = await self._ddb()
        # Someone else's by now, or gone: nothing to release.
        with contextlib.suppress(ClientError):
            await asyncio.wait_for(
                ddb.delete_item(
                    TableName=self.table,
                    Key={"pk": {"S": partition(group)}, "sk": {"S": "lease"}},
                    ConditionExpression="#o = :me",
                    ExpressionAttributeNames={"#o": "owner"},
                    ExpressionAttributeValues={":me": {"S": owner}},
                ),
                CALL_TIMEOUT_S,
            )

    # -- reading -----------------------------------------------------------------------------

    async def load(self, group: str) -> tuple[WindowMark, dict[str, TemplateRecord]]:
        """The group's watermark and every stored template (one paginated Query)."""
        ddb = await self._ddb()
        mark = WindowMark()
        templates: dict[str, TemplateRecord] = {}
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": partition(group)}},
            "ConsistentRead": True,
        }
        while True:
            resp = await asyncio.wait_for(ddb.query(**kwargs), CALL_TIMEOUT_S)
            for item in resp.get("Items", []):
                sk = item["sk"]["S"]
                if sk == "window":
                    mark = WindowMark(
                        watermark_ms=_n(item.get("watermark_ms")) or None,
                        tail=json.loads(item.get("tail", {}).get("S", "{}")),
                        windows=_n(item.get("windows")),
                        miner_version=_n(item.get("miner_version"), 1),
                        pending_alert=_pending(item),
                    )
                elif sk.startswith("tpl#"):
                    rec = TemplateRecord(
                        template_id=sk[4:],
                        template=item.get("template", {}).get("S", ""),
                        detector=json.loads(item.get("detector", {}).get("S", "{}")),
                        last_alert_ms=_n(item.get("last_alert_ms")),
                        last_seen_ms=_n(item.get("last_seen_ms")),
                    )
                    templates[rec.template_id] = rec
            last = resp.get("LastEvaluatedKey")
            if not last:
                return mark, templates
            kwargs["ExclusiveStartKey"] = last

    # -- writing -----------------------------------------------------------------------------

    async def commit_window(self, group: str, previous: WindowMark, new: WindowMark) -> None:
        """Advance the watermark from `previous` to `new`; `ConflictError` if it moved."""
        ddb = await self._ddb()
        tail = dict(sorted(new.tail.items(), key=lambda kv: -kv[1])[:MAX_TAIL_KEYS])
        item = {
            "pk": {"S": partition(group)},
            "sk": {"S": "window"},
            "watermark_ms": {"N": str(new.watermark_ms or 0)},
            "tail": {"S": json.dumps(tail, separators=(",", ":"))},
            "windows": {"N": str(new.windows)},
            "miner_version": {"N": str(new.miner_version)},
            "expires_at": {"N": str(int(time.time()) + TEMPLATE_TTL_S)},
        }
        if new.pending_alert is not None:
            item["pending_alert"] = {"S": json.dumps(new.pending_alert, separators=(",", ":"))}
        if previous.watermark_ms is None:
            condition = "attribute_not_exists(watermark_ms)"
            values: dict[str, Any] = {}
        else:
            condition = "watermark_ms = :old"
            values = {":old": {"N": str(previous.watermark_ms)}}
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "Item": item,
            "ConditionExpression": condition,
        }
        if values:
            kwargs["ExpressionAttributeValues"] = values
        try:
            await asyncio.wait_for(ddb.put_item(**kwargs), CALL_TIMEOUT_S)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise ConflictError(f"watermark of {group} moved") from exc
            raise

    # -- the shared scan budget (aiops_agent.logs.budget) -------------------------------------

    async def scanned_on(self, day: str) -> float:
        """Bytes scanned on `day` (UTC, `YYYY-MM-DD`) by every replica."""
        ddb = await self._ddb()
        resp = await asyncio.wait_for(
            ddb.get_item(
                TableName=self.table,
                Key={"pk": {"S": BUDGET_PARTITION}, "sk": {"S": day}},
                ConsistentRead=True,
            ),
            CALL_TIMEOUT_S,
        )
        return float(_n(resp.get("Item", {}).get("bytes")))

    async def add_scanned(self, day: str, nbytes: float) -> float:
        """Atomically add `nbytes` to `day`'s total; returns the new total."""
        ddb = await self._ddb()
        resp = await asyncio.wait_for(
            ddb.update_item(
                TableName=self.table,
                Key={"pk": {"S": BUDGET_PARTITION}, "sk": {"S": day}},
                UpdateExpression="ADD #b :n SET expires_at = :exp",
                ExpressionAttributeNames={"#b": "bytes"},
                ExpressionAttributeValues={
                    ":n": {"N": str(int(nbytes))},
                    ":exp": {"N": str(int(time.time()) + 3 * 86400)},
                },
                ReturnValues="UPDATED_NEW",
            ),
            CALL_TIMEOUT_S,
        )
        return float(_n(resp.get("Attributes", {}).get("bytes")))

    async def save_templates(self, group: str, records: Mapping[str, TemplateRecord]) -> None:
        """Write templates in batches of 25, retrying unprocessed items a few times."""
        ddb = await self._ddb()
        expires = str(int(time.time()) + TEMPLATE_TTL_S)
        requests = [
            {
                "PutRequest": {
                    "Item": {
                        "pk": {"S": partition(group)},
                        "sk": {"S": f"tpl#{rec.template_id}"},
                        "template": {"S": rec.template[:MAX_TEMPLATE_CHARS] or " "},
                        "detector": {"S": json.dumps(rec.detector, separators=(",", ":"))},
                        "last_alert_ms": {"N": str(rec.last_alert_ms)},
                        "last_seen_ms": {"N": str(rec.last_seen_ms)},
                        "expires_at": {"N": expires},
                    }
                }
            }
            for rec in records.values()
        ]
        for start in range(0, len(requests), 25):
            pending: dict[str, Any] = {self.table: requests[start : start + 25]}
            for attempt in range(5):
                resp = await asyncio.wait_for(
                    ddb.batch_write_item(RequestItems=pending), CALL_TIMEOUT_S
                )
                pending = resp.get("UnprocessedItems") or {}
                if not pending:
                    break
                await asyncio.sleep(0.05 * 2**attempt)
            if pending:
                unsaved = sum(len(v) for v in pending.values())
                log.warning("logs.templates_unsaved", log_group=group, count=unsaved)
