"""The bare floor: the minimum AWS calls the pipeline's work needs, issued by a plain loop.

Receive in batches of up to 10 (long polling), for each message the incident writes the daemon
does for that outcome (the first one a conditional claim, `attribute_not_exists`; the others
conditional on the version, of an item as large as the daemon's), then its delete (gathered).
Each write has the daemon's shape: one `TransactWriteItems` that puts the incident and its audit
entry (an immutable item in the patterns table), so that the floor pays what the emulator charges
for a transaction exactly as the daemon does. (The emulator rolls a transaction back item by
item, aiops_agent/demo/moto_server.py: plain moto deep-copies every table a transaction
touches, which made both sides' cost grow with what the tables held.)
No reads, no coordination, no notification, no parsing beyond telling the outcome. Same
concurrency as the daemon's consumer: 10 messages in flight, each freeing its slot when handled,
a receive waiting a moment (RECEIVE_LINGER_S) for a fuller batch, deletes gathered (at ten, or
after DELETE_LINGER_S).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from aiops_agent.sources.sqs import DELETE_LINGER_S, RECEIVE_LINGER_S
from bench.common import Kind

FLOOR_CONCURRENCY = 10


def floor_writes(calls_result: Mapping[str, Any] | None) -> dict[str, int]:
    """Incident writes per event by outcome, as the daemon really does them (from calls.json).

    A duplicate's minimum is one conditional claim that fails; a normal event writes nothing.
    Without a calls result there is nothing to match: the floor would be a guess.
    """
    if calls_result is None:
        raise ValueError("the floor needs bench/results/calls.json: python -m bench calls")
    measured = {
        kind: float(figures["incident_puts_per_event"])
        for kind, figures in calls_result.get("outcomes", {}).items()
    }
    missing = {"recovered", "review"} - set(measured)
    if missing:
        raise ValueError(f"calls.json has no {', '.join(sorted(missing))} outcome")
    writes = {kind: round(value) for kind, value in measured.items()}
    writes["normal"] = 0
    writes["duplicate"] = max(1, writes.get("duplicate", 0))
    return writes


def expected_work(kinds: Iterable[Kind], writes: Mapping[str, int]) -> dict[str, int]:
    """What a correct floor run does for these outcomes: its writes and its lost claims."""
    kinds = list(kinds)
    return {
        "puts": sum(writes.get(kind, 0) for kind in kinds),
        "claims_lost": sum(1 for kind in kinds if kind == "duplicate"),
    }


def _condition_failed(exc: ClientError) -> bool:
    """A lost claim: a failed condition, alone or as the reason a transaction was cancelled."""
    code = exc.response.get("Error", {}).get("Code")
    if code == "ConditionalCheckFailedException":
        return True
    reasons = exc.response.get("CancellationReasons") or []
    return code == "TransactionCanceledException" and any(
        r.get("Code") == "ConditionalCheckFailed" for r in reasons
    )


def kind_of(body: str) -> Kind:
    """The outcome of a benchmark event: all the floor needs to know about it."""
    event = json.loads(body)
    if event["detail"]["state"] == "running":
        return "normal"
    return "review" if "replay-name" in event else "recovered"


@dataclass
class FloorStats:
    handled: int = 0
    receives: int = 0
    deletes: int = 0
    puts: int = 0
    claims_lost: int = 0
    retries_applied: int = 0
    seen: set[str] = field(default_factory=set)


class FloorLoop:
    def __init__(
        self,
        sqs: Any,
        ddb: Any,
        queue_url: str,
        table: str,
        writes: Mapping[str, int],
        doc_bytes: int = 2000,
        audit_table: str | None = None,
    ) -> None:
        self._sqs = sqs
        self._ddb = ddb
        self._queue_url = queue_url
        self._table = table
        self._audit_table = audit_table
        self._writes = writes
        self._doc = "x" * doc_bytes
        self.stats = FloorStats()
        self._free = FLOOR_CONCURRENCY
        self._capacity = asyncio.Condition()
        self._to_delete: list[dict[str, Any]] = []

    def _item(self, incident_id: str, version: int, state: str) -> dict[str, Any]:
        now = datetime.now(UTC).isoformat(timespec="microseconds")
        return {
            "incident_id": {"S": incident_id},
            "resource_type": {"S": "ec2"},
            "resource_key": {"S": f"ec2:us-east-1:{incident_id}"},
            "workflow_state": {"S": state},
            "created_at": {"S": now},
            "updated_at": {"S": now},
            "version": {"N": str(version)},
            "doc": {"S": self._doc},
        }

    async def _incident(self, body: str) -> None:
        kind = kind_of(body)
        count = self._writes.get(kind, 0)
        incident_id = json.loads(body)["id"]
        # A first delivery owns its claim: a condition that fails on it can only be its own
        # earlier attempt, applied before a timeout or a 500 made botocore retry it (DynamoDB
        # does the same), so the incident goes on. A redelivery losing the claim is the
        # duplicate's one failed write, and the end of it.
        redelivery = incident_id in self.stats.seen
        self.stats.seen.add(incident_id)
        for version in range(1, count + 1):
            condition: dict[str, Any] = (
                {"ConditionExpression": "attribute_not_exists(incident_id)"}
                if version == 1
                else {
                    "ConditionExpression": "version = :v",
                    "ExpressionAttributeValues": {":v": {"N": str(version - 1)}},
                }
            )
            state = "COMPLETED" if version == count else "EXECUTING"
            try:
                async with asyncio.timeout(60):
                    await self._write(incident_id, version, state, condition)
                self.stats.puts += 1
            except ClientError as exc:
                if not _condition_failed(exc):
                    raise
                self.stats.puts += 1
                if redelivery:
                    self.stats.claims_lost += 1
                    return
                self.stats.retries_applied += 1

    async def _write(
        self, incident_id: str, version: int, state: str, condition: Mapping[str, Any]
    ) -> None:
        item = self._item(incident_id, version, state)
        if self._audit_table is None:
            await self._ddb.put_item(TableName=self._table, Item=item, **condition)
            return
        audit = {
            "pk": {"S": f"audit#{incident_id}"},
            "sk": {"S": f"{version:06d}"},
            "state": {"S": state},
            "detail": {"S": "floor"},
        }
        await self._ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": self._table, "Item": item, **condition}},
                {"Put": {"TableName": self._audit_table, "Item": audit}},
            ]
        )

    async def _batch(self, messages: list[dict[str, Any]]) -> None:
        """As the daemon's consumer: each message frees its slot when its writes are done, and
        handled messages share DeleteMessageBatch calls (at ten, or after DELETE_LINGER_S)."""

        async def one(message: dict[str, Any]) -> None:
            try:
                await self._incident(message["Body"])
            finally:
                async with self._capacity:
                    self._free += 1
                    self._capacity.notify_all()
            self._to_delete.append(message)
            if len(self._to_delete) >= 10:
                await self._flush()

        await asyncio.gather(*(one(m) for m in messages))

    async def _flush(self) -> None:
        while self._to_delete:
            batch, self._to_delete = self._to_delete[:10], self._to_delete[10:]
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)
            ]
            async with asyncio.timeout(30):
                await self._sqs.delete_message_batch(QueueUrl=self._queue_url, Entries=entries)
            self.stats.deletes += 1
            self.stats.handled += len(batch)  # as the daemon's are counted: once deleted

    async def _flush_every(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(DELETE_LINGER_S):
                    await stop.wait()
            await self._flush()

    async def _slots(self) -> int:
        """Free slots, waiting a moment for a fuller receive as the daemon's consumer does."""
        full = FLOOR_CONCURRENCY
        async with self._capacity:
            while self._free == 0:
                await self._capacity.wait()
            if self._free < full:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(RECEIVE_LINGER_S):
                        await self._capacity.wait_for(lambda: self._free >= full)
            return min(10, self._free)

    async def run(self, stop: asyncio.Event) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._flush_every(stop))
            while not stop.is_set():
                slots = await self._slots()
                async with asyncio.timeout(30):
                    response = await self._sqs.receive_message(
                        QueueUrl=self._queue_url, MaxNumberOfMessages=slots, WaitTimeSeconds=1
                    )
                self.stats.receives += 1
                messages = response.get("Messages", [])
                if messages:
                    async with self._capacity:
                        self._free -= len(messages)
                    group.create_task(self._batch(messages))


# ---------------------------------------------------------------- the floor as its own process


def write_stats(stats: FloorStats, path: Path) -> None:
    """The floor's counters, replaced atomically so that a reader never sees half a file."""
    data = {k: v for k, v in vars(stats).items() if k != "seen"}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def read_stats(path: Path) -> dict[str, int]:
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


async def _serve(args: argparse.Namespace) -> int:
    from aiops_agent.aws.clients import AwsClients

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with AwsClients(endpoint_url=args.endpoint, max_attempts=3) as clients:
        floor = FloorLoop(
            await clients.client("sqs"),
            await clients.client("dynamodb"),
            args.queue_url,
            args.table,
            json.loads(args.writes),
            args.doc_bytes,
            audit_table=args.audit_table,
        )
        stats_path = Path(args.stats)
        write_stats(floor.stats, stats_path)

        async def publish() -> None:
            while not stop.is_set():
                write_stats(floor.stats, stats_path)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.05):
                        await stop.wait()

        async with asyncio.TaskGroup() as group:
            group.create_task(publish())
            await floor.run(stop)
        write_stats(floor.stats, stats_path)
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.floor`: the floor loop in a process of its own, as the daemon is."""
    parser = argparse.ArgumentParser(prog="python -m bench.floor")
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--queue-url", required=True)
    parser.add_argument("--table", required=True)
    parser.add_argument("--audit-table", required=True)
    parser.add_argument("--writes", required=True, help="JSON: incident writes per outcome")
    parser.add_argument("--doc-bytes", type=int, default=2000)
    parser.add_argument("--stats", required=True, help="file the counters are written to")
    return asyncio.run(_serve(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
