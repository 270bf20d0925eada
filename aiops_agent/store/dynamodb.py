"""The DynamoDB `IncidentStore`: conditional writes for versions, GSIs for every listing.

Item layout (codec.py): top-level `incident_id`, `resource_type`, `resource_key`,
`workflow_state`, `created_at`, `updated_at` (sortable UTC strings), `version` (N), `expires_at`
(N, TTL), `doc` (the incident as JSON), and `due_shard`/`due_at` only while the incident is due
at some time (the sparse `by-due` index). Every write is a whole-item `PutItem`, so attributes
that no longer apply (`due_*`) disappear with the write that makes them stale.

Reads by id are strongly consistent; listings go through global secondary indexes and are
eventually consistent (a write may take a moment to show up in them), which the sweeper and the
CLI tolerate. Every operation, paging included, runs under one deadline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import structlog
from botocore.exceptions import ClientError

from aiops_agent.aws.clients import AwsClients
from aiops_agent.domain.models import OPEN_STATES, Incident, TimelineEntry, WorkflowState
from aiops_agent.domain.ports import ConflictError
from aiops_agent.store.codec import (
    DUE_SHARD,
    Record,
    audit_entries,
    decode,
    encode,
    format_time,
    from_item,
    to_item,
)
from aiops_agent.store.coordination import lease_item_key
from aiops_agent.store.tables import (
    INCIDENT_HASH_KEY,
    INDEX_BY_DUE,
    INDEX_BY_RESOURCE,
    INDEX_BY_RESOURCE_TYPE,
    INDEX_BY_STATE,
)

log = structlog.get_logger(__name__)

_LARGE_ITEM_BYTES = 300_000
TRANSACTION_ITEMS = 100
"""DynamoDB's limit on the items of one TransactWriteItems."""
"""DynamoDB refuses items over 400 KB; warn well before an incident's document gets there."""


class DynamoIncidentStore:
    """Incidents in one DynamoDB table (see tables.py). Implements `IncidentStore`."""

    def __init__(
        self,
        clients: AwsClients,
        table: str,
        *,
        ttl_days: int = 90,
        step_lease: timedelta = timedelta(seconds=60),
        page_size: int = 100,
        deadline_s: float = 30.0,
        audit_table: str | None = None,
        lease_table: str | None = None,
    ) -> None:
        if ttl_days <= 0:
            raise ValueError("ttl_days must be positive")
        if page_size <= 0:
            raise ValueError("page_size must be positive")
        self._clients = clients
        self._table = table
        self._ttl_days = ttl_days
        self._step_lease = step_lease
        self._page_size = page_size
        self._deadline_s = deadline_s
        self._audit_table = audit_table
        self._lease_table = lease_table
        """Where `DynamoCoordination` keeps the step leases: set, a closing write releases its
        incident's lease in the same transaction (one call fewer per recovered incident)."""

    def keeps_leases(self) -> bool:
        return self._lease_table is not None

    @property
    def table(self) -> str:
        return self._table

    # ------------------------------------------------------------ writes

    async def create(self, incident: Incident) -> bool:
        """Store `incident` as version 1; False if the id exists.

        The store does not hand the stored incident back: after True, the caller's copy is
        `incident.model_copy(update={"version": 1})`.
        """
        record = self._encode(incident, version=1)
        try:
            await self._put(
                record,
                audit_entries(incident, created=True),
                ConditionExpression="attribute_not_exists(#id)",
                ExpressionAttributeNames={"#id": INCIDENT_HASH_KEY},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except _ConditionFailed as err:
            if _ours(err.item, record):
                return True
            log.debug("incident.create_exists", incident_id=incident.incident_id)
            return False
        return True

    async def save(self, incident: Incident, *, release: str | None = None) -> Incident:
        """Write if the stored version is `incident.version`; the stored incident (version + 1).

        `release`: a step lease `incident` holds, deleted in the same transaction unless another
        holder has it now (then the write goes ahead without it)."""
        if release is not None and self._lease_table is None:
            raise ValueError("this store keeps no leases: release them through Coordination")
        record = self._encode(incident, version=incident.version + 1)
        try:
            await self._put(
                record,
                audit_entries(incident, created=False),
                ConditionExpression="attribute_exists(#id) AND #v = :expected",
                ExpressionAttributeNames={"#id": INCIDENT_HASH_KEY, "#v": "version"},
                ExpressionAttributeValues={":expected": {"N": str(incident.version)}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                release=self._release_item(release, incident.incident_id),
            )
        except _ConditionFailed as err:
            if _ours(err.item, record):
                return decode(record)
            old = err.item
            stored_version = int(old["version"]["N"]) if "version" in old else None
            log.info(
                "incident.save_conflict",
                incident_id=incident.incident_id,
                expected_version=incident.version,
                stored_version=stored_version,
            )
            raise ConflictError(
                f"incident {incident.incident_id}: expected version {incident.version}, "
                f"stored {stored_version}"
            ) from err
        return decode(record)

    def _release_item(self, key: str | None, holder: str) -> dict[str, Any] | None:
        """The transaction's Delete of lease `key`: only while `holder` has it (or nobody)."""
        if key is None or self._lease_table is None:
            return None
        return {
            "Delete": {
                "TableName": self._lease_table,
                "Key": lease_item_key(key),
                "ConditionExpression": "attribute_not_exists(pk) OR holder = :h",
                "ExpressionAttributeValues": {":h": {"S": holder}},
            }
        }

    async def _put(
        self,
        record: Record,
        audit: list[tuple[int, TimelineEntry]],
        release: dict[str, Any] | None = None,
        **condition: Any,
    ) -> None:
        """Put the incident under `condition`, and, in the same transaction, one immutable
        audit item per timeline entry this write appends (the record is their projection) and
        `release`, a lease's Delete."""
        if len(record.doc) > _LARGE_ITEM_BYTES:
            log.warning(
                "incident.item_large", incident_id=record.incident_id, doc_bytes=len(record.doc)
            )
        dynamodb = await self._clients.client("dynamodb")
        put = {"TableName": self._table, "Item": to_item(record), **condition}
        if self._audit_table is None:
            audit = []
        if not audit and release is None:
            try:
                async with asyncio.timeout(self._deadline_s):
                    await dynamodb.put_item(**put)
            except ClientError as err:
                if _code(err) != "ConditionalCheckFailedException":
                    raise
                raise _ConditionFailed(err.response.get("Item") or {}) from err
            return
        head: list[dict[str, Any]] = [{"Put": put}] + ([release] if release else [])
        items = head + [
            {"Put": {"TableName": self._audit_table, "Item": audit_item(record, i, entry)}}
            for i, entry in audit[-(TRANSACTION_ITEMS - len(head)) :]
        ]
        try:
            async with asyncio.timeout(self._deadline_s):
                await dynamodb.transact_write_items(TransactItems=items)
        except ClientError as err:
            reasons = err.response.get("CancellationReasons") or []
            if _code(err) != "TransactionCanceledException" or not reasons:
                raise
            if reasons[0].get("Code") == "ConditionalCheckFailed":
                raise _ConditionFailed(reasons[0].get("Item") or {}) from err
            if release is not None and reasons[1].get("Code") == "ConditionalCheckFailed":
                # The lease expired and another incident took it: theirs to release.
                log.info("incident.lease_taken_over", incident_id=record.incident_id)
                await self._put(record, audit, None, **condition)
                return
            raise

    async def audit_trail(self, incident_id: str) -> list[TimelineEntry]:
        """The incident's transitions as written, one immutable item each, in order."""
        if self._audit_table is None:
            return []
        dynamodb = await self._clients.client("dynamodb")
        entries: list[TimelineEntry] = []
        kwargs: dict[str, Any] = {
            "TableName": self._audit_table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": f"{AUDIT_PREFIX}{incident_id}"}},
            "ConsistentRead": True,
        }
        async with asyncio.timeout(self._deadline_s):
            while True:
                page = await dynamodb.query(**kwargs)
                entries += [
                    TimelineEntry.model_validate_json(item["entry"]["S"])
                    for item in page.get("Items", [])
                ]
                if "LastEvaluatedKey" not in page:
                    return entries
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # ------------------------------------------------------------ reads

    async def get(self, incident_id: str) -> Incident | None:
        dynamodb = await self._clients.client("dynamodb")
        async with asyncio.timeout(self._deadline_s):
            response = await dynamodb.get_item(
                TableName=self._table,
                Key={INCIDENT_HASH_KEY: {"S": incident_id}},
                ConsistentRead=True,
            )
        item = response.get("Item")
        return decode(from_item(item)) if item else None

    async def open_for_resource(self, resource_key: str) -> Incident | None:
        # The filter drops terminal incidents server side, and Limit caps the items *evaluated*
        # per page, not those returned: keep paging, newest first, until one passes.
        names = {"#rk": "resource_key", "#ws": "workflow_state"}
        values: dict[str, Any] = {":rk": {"S": resource_key}}
        placeholders = []
        for i, state in enumerate(OPEN_STATES):
            values[f":s{i}"] = {"S": state.value}
            placeholders.append(f":s{i}")
        async with asyncio.timeout(self._deadline_s):
            found = await self._read(
                "query",
                limit=1,
                keep=lambda record: record.open,
                IndexName=INDEX_BY_RESOURCE,
                KeyConditionExpression="#rk = :rk",
                FilterExpression=f"#ws IN ({', '.join(placeholders)})",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ScanIndexForward=False,
            )
        return decode(found[0]) if found else None

    async def recent_for_resource(self, resource_key: str, since: datetime) -> list[Incident]:
        async with asyncio.timeout(self._deadline_s):
            records = await self._read(
                "query",
                IndexName=INDEX_BY_RESOURCE,
                KeyConditionExpression="#rk = :rk AND #ca >= :since",
                ExpressionAttributeNames={"#rk": "resource_key", "#ca": "created_at"},
                ExpressionAttributeValues={
                    ":rk": {"S": resource_key},
                    ":since": {"S": format_time(since)},
                },
                ScanIndexForward=False,
            )
        return [decode(record) for record in records]

    async def latest_for_resource(self, resource_key: str, limit: int) -> list[Incident]:
        """One unfiltered query, newest first: what correlation needs of a resource's past."""
        if limit <= 0:
            return []
        async with asyncio.timeout(self._deadline_s):
            records = await self._read(
                "query",
                limit=limit,
                IndexName=INDEX_BY_RESOURCE,
                KeyConditionExpression="#rk = :rk",
                ExpressionAttributeNames={"#rk": "resource_key"},
                ExpressionAttributeValues={":rk": {"S": resource_key}},
                ScanIndexForward=False,
            )
        return [decode(record) for record in records]

    async def list_incidents(
        self,
        *,
        state: WorkflowState | None = None,
        resource_type: str | None = None,
        limit: int = 100,
    ) -> list[Incident]:
        """Newest first: by `updated_at` when filtering by state, else by `created_at`.

        With a state, the `by-state` index (and a filter on the resource type, if given); with
        only a resource type, `by-resource-type`; with neither, a scan sorted here, which reads
        the whole table: meant for the CLI, not for a hot path.
        """
        if limit <= 0:
            return []
        async with asyncio.timeout(self._deadline_s):
            if state is not None:
                names = {"#ws": "workflow_state"}
                values: dict[str, Any] = {":ws": {"S": state.value}}
                extra: dict[str, Any] = {}
                if resource_type is not None:
                    names["#rt"] = "resource_type"
                    values[":rt"] = {"S": resource_type}
                    extra["FilterExpression"] = "#rt = :rt"
                records = await self._read(
                    "query",
                    limit=limit,
                    IndexName=INDEX_BY_STATE,
                    KeyConditionExpression="#ws = :ws",
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                    ScanIndexForward=False,
                    **extra,
                )
            elif resource_type is not None:
                records = await self._read(
                    "query",
                    limit=limit,
                    IndexName=INDEX_BY_RESOURCE_TYPE,
                    KeyConditionExpression="#rt = :rt",
                    ExpressionAttributeNames={"#rt": "resource_type"},
                    ExpressionAttributeValues={":rt": {"S": resource_type}},
                    ScanIndexForward=False,
                )
            else:
                records = await self._read("scan")
                records.sort(key=lambda r: (r.created_at, r.incident_id), reverse=True)
        return [decode(record) for record in records[:limit]]

    async def due(self, now: datetime, limit: int = 50) -> list[Incident]:
        """Incidents whose `due_at` has come, most overdue first (the sparse `by-due` index)."""
        if limit <= 0:
            return []
        async with asyncio.timeout(self._deadline_s):
            records = await self._read(
                "query",
                limit=limit,
                IndexName=INDEX_BY_DUE,
                KeyConditionExpression="#ds = :ds AND #da <= :now",
                ExpressionAttributeNames={"#ds": "due_shard", "#da": "due_at"},
                ExpressionAttributeValues={
                    ":ds": {"S": DUE_SHARD},
                    ":now": {"S": format_time(now)},
                },
                ScanIndexForward=True,
            )
        return [decode(record) for record in records]

    # ------------------------------------------------------------ paging

    async def _read(
        self,
        operation: str,
        *,
        limit: int | None = None,
        keep: Callable[[Record], bool] | None = None,
        **params: Any,
    ) -> list[Record]:
        """The records a query or scan returns, page by page, up to `limit` of those kept.

        DynamoDB's `Limit` caps the items a page *evaluates*, before any FilterExpression, so a
        filtered read keeps paging until it has `limit` matches or the index is exhausted. Only
        an unfiltered read shrinks its last page to what is still needed.
        """
        dynamodb = await self._clients.client("dynamodb")
        call = getattr(dynamodb, operation)
        filtered = "FilterExpression" in params or keep is not None
        found: list[Record] = []
        start_key: dict[str, Any] | None = None
        while limit is None or len(found) < limit:
            page_limit = self._page_size
            if limit is not None and not filtered:
                page_limit = min(page_limit, limit - len(found))
            request: dict[str, Any] = {"TableName": self._table, "Limit": page_limit, **params}
            if start_key is not None:
                request["ExclusiveStartKey"] = start_key
            response = await call(**request)
            for item in response.get("Items", []):
                record = from_item(item)
                if keep is None or keep(record):
                    found.append(record)
            start_key = response.get("LastEvaluatedKey")
            if not start_key:
                break
        return found if limit is None else found[:limit]

    def _encode(self, incident: Incident, *, version: int) -> Record:
        return encode(
            incident, version=version, ttl_days=self._ttl_days, step_lease=self._step_lease
        )


AUDIT_PREFIX = "audit#"


class _ConditionFailed(Exception):
    def __init__(self, item: dict[str, Any]) -> None:
        super().__init__("condition failed")
        self.item = item


def _ours(stored: dict[str, Any], record: Record) -> bool:
    """Whether the item a conditional write found is the one it was writing: its own earlier
    attempt landed and the answer was lost (a timeout, a 500), and the SDK's retry found it.
    DynamoDB makes a retried transaction idempotent only within 10 minutes of its token, and a
    PutItem never: without this, our own write would read as another writer's."""
    return bool(stored) and stored == to_item(record)


def audit_item(record: Record, index: int, entry: TimelineEntry) -> dict[str, dict[str, str]]:
    return {
        "pk": {"S": f"{AUDIT_PREFIX}{record.incident_id}"},
        "sk": {"S": f"{index:06d}"},
        "entry": {"S": entry.model_dump_json()},
        "state": {"S": entry.state.value},
        "at": {"S": entry.at.isoformat()},
        "version": {"N": str(record.version)},
        "expires_at": {"N": str(record.expires_at)},
    }


def _code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))
