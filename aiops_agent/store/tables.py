"""The DynamoDB tables: their key schemas, and `ensure_tables`, which creates them idempotently.

Incident table (`AIOPS_INCIDENT_TABLE`): hash key `incident_id`; four global secondary indexes,
all projecting every attribute:

| index              | hash key         | range key    | used by                                 |
|--------------------|------------------|--------------|-----------------------------------------|
| `by-resource-type` | `resource_type`  | `created_at` | `list_incidents(resource_type=...)`     |
| `by-resource`      | `resource_key`   | `created_at` | `open_for_resource`, `recent_for_...`   |
| `by-state`         | `workflow_state` | `updated_at` | `list_incidents(state=...)`             |
| `by-due`           | `due_shard`      | `due_at`     | `due` (sparse: only items that are due) |

Patterns table (`AIOPS_PATTERNS_TABLE`): hash `pk`, range `sk`; log baselines, watermarks and
leases. Both tables expire items through TTL on `expires_at` (epoch seconds).
"""

from __future__ import annotations

import asyncio
from typing import Any, Final, Literal

import structlog
from botocore.exceptions import ClientError
from tenacity import AsyncRetrying, retry_if_result, stop_after_delay, wait_fixed

from aiops_agent.aws.clients import AwsClients

log = structlog.get_logger(__name__)

TableOutcome = Literal["created", "found"]

TTL_ATTRIBUTE: Final = "expires_at"

# ---------------------------------------------------------------- incident table

INCIDENT_HASH_KEY: Final = "incident_id"
INDEX_BY_RESOURCE_TYPE: Final = "by-resource-type"
INDEX_BY_RESOURCE: Final = "by-resource"
INDEX_BY_STATE: Final = "by-state"
INDEX_BY_DUE: Final = "by-due"

INCIDENT_INDEXES: Final[dict[str, tuple[str, str]]] = {
    INDEX_BY_RESOURCE_TYPE: ("resource_type", "created_at"),
    INDEX_BY_RESOURCE: ("resource_key", "created_at"),
    INDEX_BY_STATE: ("workflow_state", "updated_at"),
    INDEX_BY_DUE: ("due_shard", "due_at"),
}
"""Index name -> (hash key attribute, range key attribute); every key attribute is a string."""

INCIDENT_KEY_SCHEMA: Final[list[dict[str, str]]] = [
    {"AttributeName": INCIDENT_HASH_KEY, "KeyType": "HASH"}
]
INCIDENT_ATTRIBUTE_DEFINITIONS: Final[list[dict[str, str]]] = [
    {"AttributeName": name, "AttributeType": "S"}
    for name in dict.fromkeys(
        [INCIDENT_HASH_KEY, *(attr for pair in INCIDENT_INDEXES.values() for attr in pair)]
    )
]
INCIDENT_GSIS: Final[list[dict[str, Any]]] = [
    {
        "IndexName": index,
        "KeySchema": [
            {"AttributeName": hash_key, "KeyType": "HASH"},
            {"AttributeName": range_key, "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "ALL"},
    }
    for index, (hash_key, range_key) in INCIDENT_INDEXES.items()
]

# ---------------------------------------------------------------- patterns table

PATTERNS_HASH_KEY: Final = "pk"
PATTERNS_RANGE_KEY: Final = "sk"
PATTERNS_KEY_SCHEMA: Final[list[dict[str, str]]] = [
    {"AttributeName": PATTERNS_HASH_KEY, "KeyType": "HASH"},
    {"AttributeName": PATTERNS_RANGE_KEY, "KeyType": "RANGE"},
]
PATTERNS_ATTRIBUTE_DEFINITIONS: Final[list[dict[str, str]]] = [
    {"AttributeName": PATTERNS_HASH_KEY, "AttributeType": "S"},
    {"AttributeName": PATTERNS_RANGE_KEY, "AttributeType": "S"},
]

ACTIVE_TIMEOUT_S: Final = 120.0
"""How long `ensure_tables` waits for a table (and its indexes) to become ACTIVE."""
_POLL_S: Final = 1.0
_CALL_TIMEOUT_S: Final = 30.0


class TableSchemaError(RuntimeError):
    """An existing table lacks keys or indexes the agent needs: it is not the agent's table."""


async def ensure_tables(
    clients: AwsClients, incident_table: str, patterns_table: str
) -> dict[str, TableOutcome]:
    """Create both tables if missing, wait until ACTIVE, enable TTL; `{name: created|found}`."""
    dynamodb = await clients.client("dynamodb")
    outcomes: dict[str, TableOutcome] = {}
    outcomes[incident_table] = await _ensure_table(
        dynamodb,
        TableName=incident_table,
        KeySchema=INCIDENT_KEY_SCHEMA,
        AttributeDefinitions=INCIDENT_ATTRIBUTE_DEFINITIONS,
        GlobalSecondaryIndexes=INCIDENT_GSIS,
        BillingMode="PAY_PER_REQUEST",
    )
    outcomes[patterns_table] = await _ensure_table(
        dynamodb,
        TableName=patterns_table,
        KeySchema=PATTERNS_KEY_SCHEMA,
        AttributeDefinitions=PATTERNS_ATTRIBUTE_DEFINITIONS,
        BillingMode="PAY_PER_REQUEST",
    )
    for name in (incident_table, patterns_table):
        description = await _wait_active(dynamodb, name)
        if outcomes[name] == "found":
            _check_schema(description, incident=name == incident_table)
        await _ensure_ttl(dynamodb, name)
    return outcomes


async def _ensure_table(dynamodb: Any, **spec: Any) -> TableOutcome:
    name = spec["TableName"]
    try:
        async with asyncio.timeout(_CALL_TIMEOUT_S):
            await dynamodb.create_table(**spec)
    except ClientError as err:
        if _code(err) != "ResourceInUseException":
            raise
        log.info("table.found", table=name)
        return "found"
    log.info("table.created", table=name)
    return "created"


async def _wait_active(dynamodb: Any, name: str) -> dict[str, Any]:
    """The table's description once it and its indexes are ACTIVE; TimeoutError after a bound."""

    async def describe() -> dict[str, Any]:
        async with asyncio.timeout(_CALL_TIMEOUT_S):
            response = await dynamodb.describe_table(TableName=name)
        table: dict[str, Any] = response["Table"]
        return table

    def not_active(table: dict[str, Any]) -> bool:
        indexes = table.get("GlobalSecondaryIndexes") or []
        return table.get("TableStatus") != "ACTIVE" or any(
            index.get("IndexStatus", "ACTIVE") != "ACTIVE" for index in indexes
        )

    retrying = AsyncRetrying(
        retry=retry_if_result(not_active),
        stop=stop_after_delay(ACTIVE_TIMEOUT_S),
        wait=wait_fixed(_POLL_S),
        retry_error_callback=lambda state: _raise_not_active(name),
    )
    table: dict[str, Any] = await retrying(describe)
    return table


def _raise_not_active(name: str) -> dict[str, Any]:
    raise TimeoutError(f"DynamoDB table {name} not ACTIVE after {ACTIVE_TIMEOUT_S:.0f}s")


def _check_schema(table: dict[str, Any], *, incident: bool) -> None:
    """Fail fast, naming what is missing, when a found table is not shaped like ours."""
    expected_keys = INCIDENT_KEY_SCHEMA if incident else PATTERNS_KEY_SCHEMA
    name = table.get("TableName", "?")
    if _keys(table.get("KeySchema")) != _keys(expected_keys):
        raise TableSchemaError(
            f"DynamoDB table {name} has key schema {table.get('KeySchema')}, "
            f"expected {expected_keys}"
        )
    if not incident:
        return
    found = {
        index["IndexName"]: _keys(index.get("KeySchema"))
        for index in table.get("GlobalSecondaryIndexes") or []
    }
    wrong = [
        index
        for index, (hash_key, range_key) in INCIDENT_INDEXES.items()
        if found.get(index) != [(hash_key, "HASH"), (range_key, "RANGE")]
    ]
    if wrong:
        raise TableSchemaError(
            f"DynamoDB table {name} lacks (or has different) global secondary indexes: "
            + ", ".join(wrong)
        )


def _keys(schema: list[dict[str, str]] | None) -> list[tuple[str, str]]:
    return [(key["AttributeName"], key["KeyType"]) for key in schema or []]


async def _ensure_ttl(dynamodb: Any, name: str) -> None:
    async with asyncio.timeout(_CALL_TIMEOUT_S):
        described = await dynamodb.describe_time_to_live(TableName=name)
    current = described.get("TimeToLiveDescription") or {}
    if current.get("TimeToLiveStatus") in {"ENABLED", "ENABLING"}:
        if current.get("AttributeName") != TTL_ATTRIBUTE:
            log.warning(
                "table.ttl_other_attribute", table=name, attribute=current.get("AttributeName")
            )
        return
    try:
        async with asyncio.timeout(_CALL_TIMEOUT_S):
            await dynamodb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
            )
    except ClientError as err:
        # Two bootstraps racing: the loser is told TTL is already enabled (or being changed).
        if _code(err) != "ValidationException" or "already" not in str(err).lower():
            raise
    log.info("table.ttl_enabled", table=name, attribute=TTL_ATTRIBUTE)


def _code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))
