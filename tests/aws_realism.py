"""The realism layer: what real AWS does and moto does not, as proxy rules (see tests/aws_proxy.py).

Each rule imitates documented AWS behaviour:

- `StaleReads`: "The Amazon EC2 API follows an eventual consistency model ... the result of an API
  command you run that affects your Amazon EC2 resources might not be immediately visible to all
  subsequent commands you run" (EC2 developer guide, Eventual consistency); ECS, IAM and the
  Resource Groups Tagging API read the same way. moto answers every read with the newest write.
- `Insights`: StartQuery schedules a query; GetQueryResults reports `Scheduled`/`Running` until it
  is `Complete` (or `Failed`, `Cancelled`, `Timeout`: queries time out after 60 minutes); "You
  can have up to 30 concurrent CloudWatch Logs Insights queries" (StartQuery API reference),
  beyond which StartQuery fails with `LimitExceededException`; StopQuery "stops a query that is in
  progress. If the query has already ended, the operation returns an error indicating that the
  specified query is not running" (StopQuery API reference). moto completes a query inside
  StartQuery and answers StopQuery with HTTP 500.
- `Unprocessed`: "BatchGetItem returns a partial result if the response size limit is exceeded,
  the table's provisioned throughput is exceeded, more than 1MB per partition is requested, or an
  internal processing failure occurs ... the operation returns a value for UnprocessedKeys"
  (likewise BatchWriteItem's UnprocessedItems); the SQS batch actions answer HTTP 200 with a
  `Failed` entry per message they could not handle. moto processes every entry.
- `StateReason`: DescribeInstances carries `StateReason` (`Client.UserInitiatedShutdown`,
  `Server.InternalError`, `Server.ScheduledStop`, `Client.InstanceInitiatedShutdown`,
  `Server.SpotInstanceTermination`, ...) and `StateTransitionReason`; moto only ever reports a
  user-initiated stop.
- `CodeBuild`: a build runs for a while (`IN_PROGRESS`) and ends SUCCEEDED, FAILED or TIMED_OUT
  (a build's default timeout is 60 minutes); StopBuild ends it STOPPED; "The [idempotency] token
  is included in the StartBuild request and is valid for 5 minutes" (StartBuild API reference):
  a repeat within that time returns the same build, after it starts another. BatchGetBuilds
  reports the `environmentVariablesOverride` the build was started with. moto's build is
  SUCCEEDED on the first look, never fails, ignores the token and drops the overrides.
"""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from tests.aws_rules import Exchange, Proceed, Reply, Rule, json_error, op_set

_READ_PREFIXES = ("Describe", "Get", "List", "BatchGet", "Query", "Scan", "Receive")


def is_read(operation: str) -> bool:
    return operation.startswith(_READ_PREFIXES)


# ---------------------------------------------------------------- eventual consistency


class StaleReads(Rule):
    """After a write, reads answer what they answered before it, for a while.

    Every successful matching read is remembered by its parameters. A write (an operation in
    `after`; default: any non-read operation of the same service) opens a stale window of
    `seconds` (ended early after `reads` stale answers): a read whose parameters were answered
    before the write gets that older answer again, without reaching the emulator; a read never
    seen before goes through (there is nothing older to give). A write inside the window keeps
    the oldest answers (a replica can lag behind several writes).
    """

    def __init__(
        self,
        operation: str | Iterable[str],
        after: str | Iterable[str] | None,
        seconds: float,
        reads: int | None,
        service: str | None,
    ) -> None:
        self.reads_of = op_set(operation) or frozenset()
        self.writes = op_set(after)
        self.service = service
        self.seconds = seconds
        self.max_reads = reads
        self._latest: dict[tuple[str, str, str], Reply] = {}
        self._snapshot: dict[tuple[str, str, str], Reply] = {}
        self._until = 0.0
        self._left: int | None = None
        self._services: set[str] = set()
        self.served = 0
        """Stale answers given so far."""
        self.windows = 0
        """Writes that opened (or extended) a stale window."""

    def matches(self, ex: Exchange) -> bool:
        if self.service is not None and ex.service != self.service:
            return False
        if ex.operation in self.reads_of:
            self._services.add(ex.service)
            return True
        if self.writes is not None:
            return ex.operation in self.writes
        return ex.service in self._services and not is_read(ex.operation)

    @property
    def stale(self) -> bool:
        """Inside a stale window now."""
        return time.monotonic() < self._until and (self._left is None or self._left > 0)

    def end(self) -> None:
        """Close the window: reads are fresh from now on."""
        self._until = 0.0

    async def apply(self, ex: Exchange, proceed: Proceed) -> Reply:
        key = (ex.service, ex.operation, json.dumps(ex.params, sort_keys=True, default=str))
        if ex.operation in self.reads_of:
            if self.stale and key in self._snapshot:
                self.served += 1
                if self._left is not None:
                    self._left -= 1
                ex.outcome = "served"
                return self._snapshot[key]
            reply = await proceed(ex)
            if reply.status == 200:
                self._latest[key] = reply
            return reply
        reply = await proceed(ex)
        if reply.status == 200:
            snapshot = dict(self._latest)
            if self.stale:
                snapshot.update(self._snapshot)  # the oldest answers stay
            self._snapshot = snapshot
            self._until = time.monotonic() + self.seconds
            self._left = self.max_reads
            self.windows += 1
        return reply


# ---------------------------------------------------------------- Logs Insights


@dataclass
class _Query:
    query_id: str
    started: float
    polls: int = 0
    cancelled: bool = False


class Insights(Rule):
    """StartQuery / GetQueryResults / StopQuery as AWS runs them (see the module docstring).

    A query is running until `running_for` seconds after its start and, if `polls` is given,
    until it has been polled that many times (an unpolled query runs on, as an abandoned one does
    on AWS, and keeps its concurrency slot). Then GetQueryResults forwards to the emulator (which
    holds the results) unless `final_status` is another end: `Failed` or `Timeout`.
    """

    service = "logs"
    operations = frozenset({"StartQuery", "GetQueryResults", "StopQuery"})

    def __init__(
        self,
        running_for: float,
        polls: int | None,
        concurrency: int | None,
        final_status: str,
    ) -> None:
        self.running_for = running_for
        self.polls = polls
        self.concurrency = concurrency
        self.final_status = final_status
        self.queries: dict[str, _Query] = {}
        self.rejected = 0
        """StartQuery calls refused with LimitExceededException."""
        self.stopped = 0
        """Queries cancelled by StopQuery while running."""
        self.max_running = 0

    def finish(self) -> None:
        """From now on every query is done (the next poll sees its end)."""
        self.running_for = 0.0
        self.polls = None

    def _running(self, q: _Query) -> bool:
        if q.cancelled:
            return False
        if time.monotonic() - q.started < self.running_for:
            return True
        return self.polls is not None and q.polls < self.polls

    @property
    def running(self) -> int:
        return sum(1 for q in self.queries.values() if self._running(q))

    async def apply(self, ex: Exchange, proceed: Proceed) -> Reply:
        if ex.operation == "StartQuery":
            if self.concurrency is not None and self.running >= self.concurrency:
                self.rejected += 1
                ex.outcome = "served"
                return json_error(
                    400,
                    "LimitExceededException",
                    f"Account maximum query concurrency limit of [{self.concurrency}] reached.",
                )
            reply = await proceed(ex)
            if reply.status == 200:
                query_id = str(reply.json().get("queryId", ""))
                self.queries[query_id] = _Query(query_id, time.monotonic())
                self.max_running = max(self.max_running, self.running)
            return reply
        query_id = str(ex.params.get("queryId", ""))
        q = self.queries.get(query_id)
        if ex.operation == "StopQuery":
            ex.outcome = "served"
            if q is None or not self._running(q):
                return json_error(
                    400, "InvalidParameterException", f"Query {query_id} is not running"
                )
            q.cancelled = True
            self.stopped += 1
            return Reply.of_json({"success": True})
        if q is None:
            return await proceed(ex)
        running = self._running(q)
        q.polls += 1
        if q.cancelled or running or self.final_status != "Complete":
            ex.outcome = "served"
            status = "Cancelled" if q.cancelled else "Running" if running else self.final_status
            return Reply.of_json(
                {
                    "status": status,
                    "results": [],
                    "statistics": {
                        "recordsMatched": 0.0,
                        "recordsScanned": 0.0,
                        "bytesScanned": 0.0,
                    },
                }
            )
        return await proceed(ex)


# ---------------------------------------------------------------- partial batches


class Unprocessed(Rule):
    """A batch call handles all but its last `count` entries, `times` times (None: always)."""

    def __init__(self, operation: str, count: int, times: int | None, code: str) -> None:
        if operation not in _BATCHES:
            raise ValueError(f"unprocessed() knows {sorted(_BATCHES)}, not {operation}")
        self.operations = frozenset({operation})
        self.count = count
        self.times = times
        self.code = code
        self.applied = 0
        """Calls answered partially so far."""
        self.held_back = 0
        """Entries left unprocessed so far."""

    def matches(self, ex: Exchange) -> bool:
        return (self.times is None or self.applied < self.times) and super().matches(ex)

    async def apply(self, ex: Exchange, proceed: Proceed) -> Reply:
        split, merge = _BATCHES[ex.operation]
        kept, held = split(ex.params, self.count)
        if not held:
            return await proceed(ex)
        self.applied += 1
        self.held_back += _size(held)
        if _size(kept) == 0:
            ex.outcome = "served"
            return Reply.of_json(merge({}, held, self.code))
        reply = await proceed(ex.with_json_params(kept))
        if reply.status != 200:
            return reply
        return reply.with_json(merge(reply.json(), held, self.code))


def _size(part: dict[str, Any]) -> int:
    if "Entries" in part:
        return len(part["Entries"])
    total = 0
    for value in part.get("RequestItems", {}).values():
        total += len(value["Keys"]) if isinstance(value, dict) else len(value)
    return total


def _split_request_items(
    params: dict[str, Any], count: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Hold back the last `count` keys (BatchGetItem) or write requests (BatchWriteItem)."""
    kept: dict[str, Any] = {}
    held: dict[str, Any] = {}
    left = count
    for table, value in reversed(list(params.get("RequestItems", {}).items())):
        entries = list(value["Keys"] if isinstance(value, dict) else value)
        take = min(left, len(entries))
        left -= take
        keep, hold = entries[: len(entries) - take], entries[len(entries) - take :]
        if isinstance(value, dict):
            if keep:
                kept[table] = {**value, "Keys": keep}
            if hold:
                held[table] = {**value, "Keys": hold}
        else:
            if keep:
                kept[table] = keep
            if hold:
                held[table] = hold
    return {**params, "RequestItems": kept}, {"RequestItems": held}


def _merge_get(answer: dict[str, Any], held: dict[str, Any], _code: str) -> dict[str, Any]:
    return {
        **answer,
        "Responses": answer.get("Responses", {}),
        "UnprocessedKeys": held["RequestItems"],
    }


def _merge_write(answer: dict[str, Any], held: dict[str, Any], _code: str) -> dict[str, Any]:
    return {**answer, "UnprocessedItems": held["RequestItems"]}


def _split_entries(params: dict[str, Any], count: int) -> tuple[dict[str, Any], dict[str, Any]]:
    entries = list(params.get("Entries", []))
    cut = max(0, len(entries) - count)
    return {**params, "Entries": entries[:cut]}, {"Entries": entries[cut:]}


def _merge_sqs(answer: dict[str, Any], held: dict[str, Any], code: str) -> dict[str, Any]:
    failed = [
        {
            "Id": e["Id"],
            "SenderFault": False,
            "Code": code,
            "Message": "Internal error (injected by the test proxy)",
        }
        for e in held["Entries"]
    ]
    return {
        **answer,
        "Successful": answer.get("Successful", []),
        "Failed": [*answer.get("Failed", []), *failed],
    }


_Split = Callable[[dict[str, Any], int], tuple[dict[str, Any], dict[str, Any]]]
_Merge = Callable[[dict[str, Any], dict[str, Any], str], dict[str, Any]]
_BATCHES: dict[str, tuple[_Split, _Merge]] = {
    "BatchGetItem": (_split_request_items, _merge_get),
    "BatchWriteItem": (_split_request_items, _merge_write),
    "SendMessageBatch": (_split_entries, _merge_sqs),
    "DeleteMessageBatch": (_split_entries, _merge_sqs),
    "ChangeMessageVisibilityBatch": (_split_entries, _merge_sqs),
}


# ---------------------------------------------------------------- EC2 StateReason


class StateReason(Rule):
    """DescribeInstances reports the given `StateReason` / `StateTransitionReason` for one
    instance (the emulator's own values are replaced; None leaves one as the emulator says).

    With `states`, only while the instance is in one of them: the reason belongs to the state
    transition that caused it, and AWS reports the next transition's own reason (a start
    clears it) once the instance leaves that state.
    """

    service = "ec2"
    operations = frozenset({"DescribeInstances"})

    def __init__(
        self,
        instance_id: str,
        code: str | None,
        message: str | None,
        transition_reason: str | None,
        states: Iterable[str] | None = None,
    ) -> None:
        self.instance_id = instance_id
        self.code = code
        self.message = message if message is not None or code is None else f"{code}: {code}"
        self.transition_reason = transition_reason
        self.states = None if states is None else frozenset(states)
        self.rewritten = 0

    async def apply(self, ex: Exchange, proceed: Proceed) -> Reply:
        reply = await proceed(ex)
        if reply.status != 200:
            return reply
        root = ET.fromstring(reply.body)
        ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
        changed = False
        for item in root.iter(f"{ns}item"):
            if item.findtext(f"{ns}instanceId") != self.instance_id:
                continue
            state = item.find(f"{ns}instanceState")
            if state is None:
                continue
            if self.states is not None and state.findtext(f"{ns}name") not in self.states:
                continue
            if self.code is not None:
                reason = item.find(f"{ns}stateReason")
                if reason is None:
                    reason = ET.SubElement(item, f"{ns}stateReason")
                for child in list(reason):
                    reason.remove(child)
                ET.SubElement(reason, f"{ns}code").text = self.code
                ET.SubElement(reason, f"{ns}message").text = self.message
            if self.transition_reason is not None:
                text = item.find(f"{ns}reason")
                if text is None:
                    text = ET.SubElement(item, f"{ns}reason")
                text.text = self.transition_reason
            changed = True
        if not changed:
            return reply
        self.rewritten += 1
        if ns:
            ET.register_namespace("", ns.strip("{}"))
        return reply.with_body(ET.tostring(root, encoding="utf-8", xml_declaration=True))


# ---------------------------------------------------------------- CodeBuild


@dataclass
class _Build:
    build: dict[str, Any]
    started: float
    token: str | None
    token_at: float
    stopped_at: float | None = None


class CodeBuild(Rule):
    """StartBuild / BatchGetBuilds / StopBuild / ListBuildsForProject as AWS runs them (see
    the module docstring). A build is IN_PROGRESS for `running_for` seconds, then
    `final_status`."""

    service = "codebuild"
    operations = frozenset({"StartBuild", "BatchGetBuilds", "StopBuild", "ListBuildsForProject"})

    def __init__(self, running_for: float, final_status: str, token_seconds: float) -> None:
        self.running_for = running_for
        self.final_status = final_status
        self.token_seconds = token_seconds
        self.builds: dict[str, _Build] = {}
        self.started = 0
        """Builds really started (StartBuild calls that reached the emulator)."""
        self.deduplicated = 0
        """StartBuild calls answered with an earlier build of the same token."""
        self.stopped = 0

    def finish(self) -> None:
        """From now on every build has ended (with `final_status`)."""
        self.running_for = 0.0

    def expire_tokens(self) -> None:
        """Every idempotency token used so far is past its 5 minutes."""
        for b in self.builds.values():
            b.token_at = float("-inf")

    def _status(self, b: _Build) -> str:
        if b.stopped_at is not None:
            return "STOPPED"
        if time.monotonic() - b.started < self.running_for:
            return "IN_PROGRESS"
        return self.final_status

    def _view(self, b: _Build) -> dict[str, Any]:
        status = self._status(b)
        view = {**b.build, "buildStatus": status, "buildComplete": status != "IN_PROGRESS"}
        view["currentPhase"] = "BUILD" if status == "IN_PROGRESS" else "COMPLETED"
        view.pop("endTime", None)
        if status != "IN_PROGRESS":
            view["endTime"] = time.time()
        return view

    async def apply(self, ex: Exchange, proceed: Proceed) -> Reply:
        if ex.operation == "StartBuild":
            return await self._start(ex, proceed)
        if ex.operation == "ListBuildsForProject":
            ex.outcome = "served"
            project = ex.params.get("projectName")
            ours = sorted(
                (
                    (b.started, build_id)
                    for build_id, b in self.builds.items()
                    if b.build.get("projectName") == project
                ),
                reverse=ex.params.get("sortOrder") != "ASCENDING",
            )
            return Reply.of_json({"ids": [build_id for _, build_id in ours]})
        if ex.operation == "StopBuild":
            b = self.builds.get(str(ex.params.get("id")))
            if b is None:
                return await proceed(ex)
            ex.outcome = "served"
            if self._status(b) == "IN_PROGRESS":
                b.stopped_at = time.monotonic()
                self.stopped += 1
            return Reply.of_json({"build": self._view(b)})
        reply = await proceed(ex)
        if reply.status != 200:
            return reply
        answer = reply.json()
        builds = [
            self._view(self.builds[str(got.get("id"))])
            if str(got.get("id")) in self.builds
            else got
            for got in answer.get("builds", [])
        ]
        return reply.with_json({**answer, "builds": builds})

    async def _start(self, ex: Exchange, proceed: Proceed) -> Reply:
        token = ex.params.get("idempotencyToken")
        now = time.monotonic()
        for b in self.builds.values():
            if token and b.token == token and now - b.token_at < self.token_seconds:
                self.deduplicated += 1
                ex.outcome = "served"
                return Reply.of_json({"build": self._view(b)})
        reply = await proceed(ex)
        if reply.status != 200:
            return reply
        build = dict(reply.json()["build"])
        environment = dict(build.get("environment") or {})
        environment["environmentVariables"] = list(
            ex.params.get("environmentVariablesOverride", [])
        )
        build["environment"] = environment
        b = _Build(build, now, token, now)
        self.builds[str(build["id"])] = b
        self.started += 1
        return reply.with_json({"build": self._view(b)})


# ---------------------------------------------------------------- anything else


class Transform(Rule):
    """Rewrites the emulator's answer to matching requests with `fn(exchange, reply)`."""

    def __init__(
        self,
        operation: str | Iterable[str],
        fn: Callable[[Exchange, Reply], Reply],
        service: str | None,
    ) -> None:
        self.operations = op_set(operation)
        self.service = service
        self.fn = fn
        self.applied = 0

    async def apply(self, ex: Exchange, proceed: Proceed) -> Reply:
        reply = await proceed(ex)
        self.applied += 1
        return self.fn(ex, reply)
